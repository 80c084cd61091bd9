/*
 * QTest: MTE tag stores mark the tag memory dirty for migration
 *
 * Live migration resends the pages that the dirty log reports, and on
 * -M virt,mte=on the allocation tags live in RAM of their own, so a tag
 * store that is not logged is a tag the destination never receives.  A
 * bare-metal guest (arm-mte-dirty/tag-store-kernel.S) stores tag 0 into
 * each of the 512 pages of tags of 64 MiB of RAM, over and over, while
 * the test migrates it.  The guest's RAM is shared and left out of the
 * migration (x-ignore-shared), since a tag store also dirties its data
 * page: what migration sends is the tag memory (and a few ROMs).  The
 * first pass takes over a second at the bandwidth set, in which the
 * guest dirties all its tag pages, so migration must send each of them
 * (a zero page) again: 512 zero pages more than with a guest that
 * stores no tags.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "arm-mte-dirty/tag-store-kernel-layout.h"
#include "arm-mte-dirty/tag-store-kernel.h"

enum {
    MODE_STG = 0,
    MODE_STGM = 1,
    MODE_NO_TAGS = 2,
};

/* Pages of tags that the guest stores to: 64 MiB / 32 / 4 KiB */
#define TAG_PAGES ((TAG_STORE_END - TAG_STORE_START) / 32 / 4096)

/*
 * Run the guest in @mode and migrate it to nowhere, with a downtime
 * limit that it meets only if the tag stores dirty nothing; return the
 * zero pages that the migration sent once it completed, or once it had
 * run for three seconds.
 */
static int64_t migrated_zero_pages(int mode)
{
    g_autofree char *kernel = NULL;
    g_autofree char *ram = NULL;
    g_autoptr(GError) err = NULL;
    int64_t zero_pages = -1;
    QTestState *qts;
    int fd;

    fd = g_file_open_tmp("arm-mte-dirty-XXXXXX", &kernel, &err);
    g_assert_no_error(err);
    g_assert(g_file_set_contents(kernel, (const char *)tag_store_kernel,
                                 sizeof(tag_store_kernel), &err));
    close(fd);
    fd = g_file_open_tmp("arm-mte-dirty-ram-XXXXXX", &ram, &err);
    g_assert_no_error(err);
    close(fd);

    /* x-ignore-shared leaves out shared RAM that is a named file */
    qts = qtest_initf("-accel tcg -cpu max -m 512M -nic none -S "
                      "-object memory-backend-file,id=ram,size=512M,"
                      "mem-path=%s,share=on -M virt,mte=on,memory-backend=ram "
                      "-kernel %s", ram, kernel);
    qtest_writel(qts, TAG_STORE_MODE, mode);
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-capabilities',"
                             "  'arguments': { 'capabilities': [ {"
                             "    'capability': 'x-ignore-shared',"
                             "    'state': true } ] } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             "  'arguments': { 'max-bandwidth': 262144,"
                             "                 'downtime-limit': 1 } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate', 'arguments':"
                             "  { 'uri': 'exec:cat > /dev/null' } }");
    for (int i = 0; i < 600 && zero_pages < 0; i++) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        QDict *ret = qdict_get_qdict(rsp, "return");
        const char *status = qdict_get_str(ret, "status");

        g_assert_cmpstr(status, !=, "failed");
        if (!strcmp(status, "completed") ||
            (!strcmp(status, "active") &&
             qdict_get_int(ret, "total-time") >= 3000)) {
            zero_pages = qdict_get_int(qdict_get_qdict(ret, "ram"),
                                       "duplicate");
            g_test_message("mode %d: %s, %" PRId64 " zero pages sent",
                           mode, status, zero_pages);
        }
        qobject_unref(rsp);
        g_usleep(100 * 1000);
    }
    g_assert_cmpint(zero_pages, >=, 0);

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate_cancel' }");
    qtest_quit(qts);
    unlink(kernel);
    unlink(ram);
    return zero_pages;
}

static void test_tag_store_dirty(const void *data)
{
    int mode = GPOINTER_TO_INT(data);
    int64_t without_tags = migrated_zero_pages(MODE_NO_TAGS);
    int64_t with_tags = migrated_zero_pages(mode);

    g_assert_cmpint(with_tags - without_tags, >=, TAG_PAGES);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is needed for MTE");
        return g_test_run();
    }
    qtest_add_data_func("/arm/mte/dirty/stg", GINT_TO_POINTER(MODE_STG),
                        test_tag_store_dirty);
    qtest_add_data_func("/arm/mte/dirty/stgm", GINT_TO_POINTER(MODE_STGM),
                        test_tag_store_dirty);
    return g_test_run();
}
