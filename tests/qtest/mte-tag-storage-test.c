/*
 * QTest for the MTE tag storage carveout of -M virt (tag-storage=on):
 * device tree nodes, option errors, and bare-metal guest programs whose
 * tag accesses are checked from the guest and from the host.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/cutils.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include <libfdt.h>

#define RAM_BASE        UINT64_C(0x40000000)
#define MiB             (UINT64_C(1024) * 1024)
#define GiB             (1024 * MiB)

/* Must match tests/tcg/aarch64/system/mte-tag-storage/mte-tag-storage-guest.c */
#define MAILBOX         0x40400000ull
#define MAILBOX_MAGIC   0x4d54532d54450000ull
#define FLAG_TAG_STORAGE 1
#define FLAG_HOST       2
#define FLAG_GDB        4
#define FLAG_BENCH      8
#define FLAG_CHECK      16
#define FLAG_RANDOM     32
#define FLAG_PERSIST    64
#define FLAG_RESET      128
#define FLAG_INTERLEAVE 256
#define FLAG_SECURE     512
#define FLAG_R4         1024
#define FLAG_SMP        2048
#define FLAG_FAULT_STOP 4096
#define CHECK_FLOOD     100
#define REPORTS_PER_SEC 20      /* MTE_TAG_STORAGE_REPORTS_PER_SEC */

static const char *qemu_bin(void)
{
    const char *bin = g_getenv("QTEST_QEMU_BINARY");

    g_assert(bin);
    return bin;
}

/* Run QEMU to completion; return its exit status, stderr in *err */
static int run_qemu(const char *args, char **err)
{
    g_autofree char *cmd = g_strdup_printf("%s -display none -nic none %s",
                                           qemu_bin(), args);
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) gerr = NULL;
    int status;

    g_assert(g_shell_parse_argv(cmd, NULL, &argv, &gerr));
    g_assert(g_spawn_sync(NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                          NULL, NULL, NULL, err, &status, &gerr));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void *dump_dtb(const char *machine_opts, const char *extra,
                      size_t *len)
{
    g_autofree char *dir = g_dir_make_tmp("mts-dtb-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "out.dtb", NULL);
    g_autofree char *args = g_strdup_printf("-accel tcg "
                                            "-M virt,mte=on,%s,dumpdtb=%s "
                                            "-cpu max %s", machine_opts,
                                            path, extra);
    g_autofree char *err = NULL;
    gchar *dtb;

    g_assert_cmpint(run_qemu(args, &err), ==, 0);
    g_assert(g_file_get_contents(path, &dtb, len, NULL));
    g_assert_cmpint(fdt_check_header(dtb), ==, 0);
    unlink(path);
    rmdir(dir);
    return dtb;
}

static uint64_t fdt_reg_cell64(const void *fdt, int node, int idx)
{
    int len;
    const fdt64_t *reg = fdt_getprop(fdt, node, "reg", &len);

    g_assert(reg);
    g_assert_cmpint(len, ==, 16);
    return fdt64_to_cpu(reg[idx]);
}

static uint32_t fdt_u32(const void *fdt, int node, const char *prop)
{
    int len;
    const fdt32_t *p = fdt_getprop(fdt, node, prop, &len);

    g_assert(p);
    g_assert_cmpint(len, ==, 4);
    return fdt32_to_cpu(*p);
}

typedef struct DTCase {
    const char *binding;
    uint32_t block_size;
} DTCase;

/*
 * -m 1984M: the proportions of the RFC v1 FVP example, 0x7c000000 bytes
 * of tagged RAM and a carveout of 0x3e00000 right after it.
 */
static void check_dt(const void *fdt, const char *binding, uint32_t block)
{
    const uint64_t tagged = 0x7c000000, tbase = RAM_BASE + tagged;
    const uint64_t tsize = 0x3e00000;
    int mem, ts, cmem;
    uint32_t phandle;

    mem = fdt_path_offset(fdt, "/memory@40000000");
    g_assert_cmpint(mem, >=, 0);
    g_assert_cmphex(fdt_reg_cell64(fdt, mem, 0), ==, RAM_BASE);
    g_assert_cmphex(fdt_reg_cell64(fdt, mem, 1), ==, tagged);
    phandle = fdt_get_phandle(fdt, mem);
    g_assert_cmpuint(phandle, !=, 0);

    cmem = fdt_path_offset(fdt, "/memory@bc000000");
    if (!strcmp(binding, "v3")) {
        g_assert_cmpint(cmem, >=, 0);
        g_assert_cmphex(fdt_reg_cell64(fdt, cmem, 0), ==, tbase);
        g_assert_cmphex(fdt_reg_cell64(fdt, cmem, 1), ==, tsize);
        ts = fdt_path_offset(fdt, "/reserved-memory/tag-storage@bc000000");
        g_assert_cmpint(ts, >=, 0);
        g_assert_cmpuint(fdt_u32(fdt, ts, "tagged-memory"), ==, phandle);
        g_assert(fdt_getprop(fdt, ts, "reusable", NULL));
        g_assert_null(fdt_getprop(fdt, ts, "memory", NULL));
    } else {
        /* the carveout is in no memory node */
        g_assert_cmpint(cmem, <, 0);
        ts = fdt_path_offset(fdt, !strcmp(binding, "v1") ?
                             "/metadata@bc000000" : "/tag-storage@bc000000");
        g_assert_cmpint(ts, >=, 0);
        g_assert_cmpuint(fdt_u32(fdt, ts, "memory"), ==, phandle);
        g_assert_null(fdt_getprop(fdt, ts, "tagged-memory", NULL));
    }
    g_assert(fdt_node_check_compatible(fdt, ts, "arm,mte-tag-storage") == 0);
    g_assert_cmphex(fdt_reg_cell64(fdt, ts, 0), ==, tbase);
    g_assert_cmphex(fdt_reg_cell64(fdt, ts, 1), ==, tsize);
    g_assert_cmpuint(fdt_u32(fdt, ts, "block-size"), ==, block);
    /* exactly one tag storage node */
    g_assert_cmpint(fdt_node_offset_by_compatible(fdt, ts,
                                                  "arm,mte-tag-storage"), <, 0);
}

static void test_dt(const void *opaque)
{
    const DTCase *c = opaque;
    g_autofree char *opts = g_strdup_printf("tag-storage=on,"
                                            "tag-storage-binding=%s,"
                                            "tag-storage-block-size=%u",
                                            c->binding, c->block_size);
    size_t len;
    g_autofree void *fdt = dump_dtb(opts, "-m 1984M", &len);

    check_dt(fdt, c->binding, c->block_size);
}

/*
 * Two NUMA nodes of 512 MiB and 1 GiB: one carveout per node, after all
 * RAM, in node order, each tied to its node's memory node, as in the RFC
 * v3 FVP example with two memory nodes and two tag regions.
 */
#define NUMA_ARGS "-m 1536M -smp 2 " \
    "-object memory-backend-ram,id=m0,size=512M " \
    "-object memory-backend-ram,id=m1,size=1G " \
    "-numa node,nodeid=0,memdev=m0,cpus=0 -numa node,nodeid=1,memdev=m1,cpus=1"

static void test_dt_numa(const void *opaque)
{
    const char *binding = opaque;
    static const struct {
        uint64_t ram, ram_size, carveout;
    } node[2] = {
        { 0x40000000, 0x20000000, 0xa0000000 },     /* 512 MiB / 32 */
        { 0x60000000, 0x40000000, 0xa1000000 },     /* then 1 GiB / 32 */
    };
    g_autofree char *opts = g_strdup_printf("tag-storage=on,"
                                            "tag-storage-binding=%s",
                                            binding);
    size_t len;
    g_autofree void *fdt = dump_dtb(opts, NUMA_ARGS, &len);
    bool v3 = !strcmp(binding, "v3");
    int n = 0;

    for (int i = 0; i < 2; i++) {
        g_autofree char *mpath = g_strdup_printf("/memory@%" PRIx64,
                                                 node[i].ram);
        g_autofree char *tpath = g_strdup_printf(
            "%s@%" PRIx64, v3 ? "/reserved-memory/tag-storage" :
            !strcmp(binding, "v1") ? "/metadata" : "/tag-storage",
            node[i].carveout);
        int mem = fdt_path_offset(fdt, mpath);
        int ts = fdt_path_offset(fdt, tpath);

        g_assert_cmpint(mem, >=, 0);
        g_assert_cmpint(ts, >=, 0);
        g_assert_cmpuint(fdt_u32(fdt, mem, "numa-node-id"), ==, i);
        g_assert_cmphex(fdt_reg_cell64(fdt, mem, 1), ==, node[i].ram_size);
        g_assert_cmphex(fdt_reg_cell64(fdt, ts, 0), ==, node[i].carveout);
        g_assert_cmphex(fdt_reg_cell64(fdt, ts, 1), ==, node[i].ram_size / 32);
        g_assert_cmpuint(fdt_u32(fdt, ts, v3 ? "tagged-memory" : "memory"),
                         ==, fdt_get_phandle(fdt, mem));
        if (v3) {
            g_autofree char *cpath = g_strdup_printf("/memory@%" PRIx64,
                                                     node[i].carveout);
            int cmem = fdt_path_offset(fdt, cpath);

            g_assert_cmpuint(fdt_u32(fdt, ts, "numa-node-id"), ==, i);
            g_assert_cmpint(cmem, >=, 0);
            g_assert_cmpuint(fdt_u32(fdt, cmem, "numa-node-id"), ==, i);
        }
    }
    for (int off = -1; (off = fdt_node_offset_by_compatible(fdt, off,
                                        "arm,mte-tag-storage")) >= 0;) {
        n++;
    }
    g_assert_cmpint(n, ==, 2);
}

static void test_dt_default(void)
{
    size_t len;
    g_autofree void *fdt = dump_dtb("tag-storage=on", "-m 1984M", &len);

    check_dt(fdt, "v3", 4096);
}

static void test_dt_off(void)
{
    size_t len;
    g_autofree void *fdt = dump_dtb("tag-storage=off", "-m 1984M", &len);

    g_assert_cmpint(fdt_node_offset_by_compatible(fdt, -1,
                                                  "arm,mte-tag-storage"), <, 0);
    g_assert_cmpint(fdt_path_offset(fdt, "/memory@bc000000"), <, 0);
}

/* A user -dtb gets the nodes too */
static void test_dt_user_dtb(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-udtb-XXXXXX", NULL);
    g_autofree char *user = g_build_filename(dir, "user.dtb", NULL);
    g_autofree char *args = NULL;
    g_autofree void *plain = NULL;
    g_autofree void *fdt = NULL;
    size_t len;

    plain = dump_dtb("tag-storage=off", "-m 1984M", &len);
    g_assert(g_file_set_contents(user, plain, len, NULL));
    args = g_strdup_printf("-m 1984M -dtb %s", user);
    fdt = dump_dtb("tag-storage=on", args, &len);
    check_dt(fdt, "v3", 4096);
    unlink(user);
    rmdir(dir);
}

typedef struct ErrCase {
    const char *args;
    const char *message;
} ErrCase;

#define TS "-accel tcg -M virt,mte=on,tag-storage=on"

static const ErrCase err_cases[] = {
    { "-accel tcg -M virt,tag-storage=on -cpu max", "requires mte=on" },
    { "-accel tcg -M virt,mte=off,tag-storage=on -cpu max",
      "requires mte=on" },
    { "-accel qtest -M virt,mte=on,tag-storage=on -cpu max",
      "only supported with TCG" },
    { TS " -cpu max -m 576M -object memory-backend-ram,id=m0,size=512M "
      "-object memory-backend-ram,id=m1,size=64M "
      "-numa node,memdev=m0 -numa node,memdev=m1,nodeid=1 "
      "-M tag-storage-block-size=4M",
      "NUMA node 1: tag-storage-block-size=4194304 does not divide" },
    { TS " -cpu max -m 544M -object memory-backend-ram,id=m0,size=512M "
      "-object memory-backend-ram,id=m1,size=32M "
      "-numa node,memdev=m0 -numa node,memdev=m1,nodeid=1",
      "NUMA node 1: tag-storage=on needs -m to be a multiple of 64 MiB" },
    { TS ",tag-storage-memdev=nope -cpu max",
      "tag-storage-memdev=nope is not a memory backend" },
    { TS ",tag-storage-memdev=ts -cpu max -m 512M "
      "-object memory-backend-ram,id=ts,size=8M",
      "tag-storage-memdev=ts has 8388608 bytes" },
    { TS ",tag-storage-memdev=m0 -cpu max -m 512M "
      "-object memory-backend-ram,id=m0,size=512M -numa node,memdev=m0",
      "tag-storage-memdev=m0 is already in use" },
    { "-accel tcg -M virt,mte=on,tag-storage-memdev=ts -cpu max",
      "tag-storage-memdev needs tag-storage=on" },
    { TS ",tag-storage-interleave=on -cpu max",
      "tag-storage-interleave=on needs a tag-storage-block-size of 8 KiB" },
    { "-accel tcg -M virt,mte=on,tag-storage-interleave=on -cpu max",
      "tag-storage-interleave needs tag-storage=on" },
    { TS " -cpu max -m 512M,slots=2,maxmem=1G", "memory hotplug" },
    { TS " -cpu max -m 100M", "multiple of 64 MiB" },
    { TS " -cpu max -m 96M", "multiple of 64 MiB" },
    { TS ",tag-storage-block-size=12288 -cpu max",
      "tag-storage-block-size=12288" },
    { TS ",tag-storage-block-size=2048 -cpu max",
      "tag-storage-block-size=2048" },
    { TS ",tag-storage-block-size=0 -cpu max", "tag-storage-block-size=0" },
    { TS ",tag-storage-block-size=32M -cpu max -m 512M", "does not divide" },
    { TS ",tag-storage-block-size=huge -cpu max", "tag-storage-block-size" },
    { TS ",tag-storage-binding=v4 -cpu max",
      "Parameter 'tag-storage-binding' does not accept value 'v4'" },
    { TS ",tag-storage-init=garbage -cpu max",
      "Parameter 'tag-storage-init' does not accept value 'garbage'" },
    { TS ",tag-storage-init-seed=7 -cpu max",
      "tag-storage-init-seed needs tag-storage-init=random" },
    { TS ",tag-storage-init=random,tag-storage-init-seed=abc -cpu max",
      "tag-storage-init-seed" },
    { "-accel tcg -M virt,mte=on,tag-storage-init=random -cpu max",
      "tag-storage-init needs tag-storage=on" },
    { TS ",tag-storage-binding= -cpu max",
      "Parameter 'tag-storage-binding' does not accept value ''" },
    { "-accel tcg -M virt,mte=on,tag-storage=maybe -cpu max", "tag-storage" },
    { TS ",highmem=off -cpu max -m 3008M", "carveout" },
    { "-accel tcg -M versatilepb,tag-storage=on", "tag-storage" },
    { TS ",tag-storage-check=loud -cpu max", "tag-storage-check" },
    { "-accel tcg -M virt,mte=on,tag-storage-check=log -cpu max",
      "tag-storage-check needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-binding=v1 -cpu max",
      "tag-storage-binding needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-block-size=8K -cpu max",
      "tag-storage-block-size needs tag-storage=on" },
    /* whatever the value, even the default, and with tag-storage=off */
    { "-accel tcg -M virt,mte=on,tag-storage-binding=v3 -cpu max",
      "tag-storage-binding needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-check=off -cpu max",
      "tag-storage-check needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-check=log,tag-storage-check=off "
      "-cpu max", "tag-storage-check needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-init=zero -cpu max",
      "tag-storage-init needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage-interleave=off -cpu max",
      "tag-storage-interleave needs tag-storage=on" },
    { "-accel tcg -M virt,mte=on,tag-storage=off,tag-storage-check=off "
      "-cpu max", "tag-storage-check needs tag-storage=on" },
};

static void test_error(const void *opaque)
{
    const ErrCase *c = opaque;
    g_autofree char *err = NULL;
    int status = run_qemu(c->args, &err);
    const char *nl;

    if (!strstr(err, c->message) || status != 1) {
        g_test_message("args: %s", c->args);
        g_test_message("stderr: %s", err);
    }
    g_assert_cmpint(status, ==, 1);
    g_assert_nonnull(strstr(err, c->message));
    /* exactly one line */
    nl = strchr(err, '\n');
    g_assert_nonnull(nl);
    g_assert_cmpstr(nl + 1, ==, "");
}

/* ---- guest programs ---- */

typedef struct Guest {
    QTestState *qts;
    char *dir, *serial, *log;
    uint64_t ram_size, carveout;
    uint64_t args[2];   /* MAILBOX[4], [5] before the guest starts */
    const char *extra;  /* more QEMU options */
    uint64_t block;     /* MAILBOX[8]: block size, with FLAG_INTERLEAVE */
    uint64_t ram_mib;   /* -m, in MiB; 0: 512 */
} Guest;

static char *wait_serial(Guest *g, const char *marker)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    for (;;) {
        gchar *out = NULL;

        if (g_file_get_contents(g->serial, &out, NULL, NULL) &&
            strstr(out, marker)) {
            return out;
        }
        if (g_get_monotonic_time() > deadline) {
            g_test_message("serial output so far: %s", out ? out : "");
            g_assert_not_reached();
        }
        g_free(out);
        g_usleep(20 * 1000);
    }
}

/* Start QEMU for the guest program, stopped */
static void guest_launch(Guest *g, const char *machine)
{
    const char *elf = g_getenv("MTS_GUEST_ELF");

    g_assert(elf);
    g->dir = g_dir_make_tmp("mts-guest-XXXXXX", NULL);
    g->serial = g_build_filename(g->dir, "serial.log", NULL);
    g->log = g_build_filename(g->dir, "qemu.log", NULL);
    g->ram_size = (g->ram_mib ? g->ram_mib : 512) * MiB;
    g->carveout = RAM_BASE + g->ram_size;
    g->qts = qtest_initf("-accel tcg -M virt,mte=on,%s "
                         "-cpu max -m %" PRIu64 "M -nic none -S -kernel %s "
                         "-chardev file,id=ser,path=%s -serial chardev:ser "
                         "-d guest_errors -D %s %s",
                         machine, g->ram_size / MiB, elf, g->serial, g->log,
                         g->extra ? g->extra : "");
}

/* Tell the stopped guest program what to do, and let it run */
static void guest_go(Guest *g, uint64_t flags)
{
    qtest_writeq(g->qts, MAILBOX, MAILBOX_MAGIC | flags);
    qtest_writeq(g->qts, MAILBOX + 8, RAM_BASE);
    qtest_writeq(g->qts, MAILBOX + 16, g->ram_size);
    qtest_writeq(g->qts, MAILBOX + 24, g->carveout);
    qtest_writeq(g->qts, MAILBOX + 32, g->args[0]);
    qtest_writeq(g->qts, MAILBOX + 40, g->args[1]);
    qtest_writeq(g->qts, MAILBOX + 64, g->block);
    qtest_qmp_assert_success(g->qts, "{ 'execute': 'cont' }");
}

static void guest_start_opts(Guest *g, const char *machine, uint64_t flags)
{
    guest_launch(g, machine);
    guest_go(g, flags);
}

static void guest_start(Guest *g, bool tag_storage, bool host)
{
    guest_start_opts(g, tag_storage ? "tag-storage=on" : "tag-storage=off",
                     (tag_storage ? FLAG_TAG_STORAGE : 0) |
                     (host ? FLAG_HOST : 0));
}

/* Remove what guest_launch() made for @g, once its QEMU is gone */
static void guest_cleanup(Guest *g)
{
    unlink(g->serial);
    unlink(g->log);
    rmdir(g->dir);
    g_free(g->serial);
    g_free(g->log);
    g_free(g->dir);
}

static void guest_finish(Guest *g, char *out)
{
    if (strstr(out, "not ok")) {
        g_test_message("guest output: %s", out);
    }
    g_assert_null(strstr(out, "not ok"));
    g_assert_nonnull(strstr(out, " fail=0\n"));
    qtest_quit(g->qts);
    guest_cleanup(g);
    g_free(out);
}

static void assert_checks(const char *out, const char *const *names)
{
    for (; *names; names++) {
        g_autofree char *line = g_strdup_printf("\nok %s\n", *names);

        if (!strstr(out, line)) {
            g_test_message("missing check %s in: %s", *names, out);
        }
        g_assert_nonnull(strstr(out, line));
    }
}

static const char *const generic_checks[] = {
    "stg-ldg", "irg-stg-ldg", "check-match", "check-mismatch-load",
    "fault-far", "check-mismatch-store", "store-far", "store-esr-wnr",
    "store-suppressed", "ldp-across-granules", "ldp-far",
    "unaligned-cross-granule", "unaligned-same-tags",
    "cross-page-ldp-match", "cross-page-ldr-mismatch",
    "st2g", "stzg", "stz2g", "stgp", "stgm", "ldgm", "dc-gva", "dc-gzva",
    "setg", NULL
};

static const char *const carveout_checks[] = {
    "tag-to-data", "tag-to-data-byte0", "data-to-tag-ldg",
    "data-to-tag-check-ok", "data-to-tag-check-fault", "data-to-tag-far",
    "tlb-before", "tlb-after", "st2g-byte", "stz2g-byte", "stgm-bytes",
    "dc-gzva-byte", "setg-bytes", "carveout-exec", "tb-invalidate-stgm",
    "carveout-exec-2", "tb-invalidate-stg", "self-ldg-reads-0",
    "self-stg-ignored", "self-no-fault", "self-no-fault-again",
    "self-no-fault-page2", "host-write-ldg", "host-write-check", NULL
};

/* Tag storage off: the same program, every tag path as in stock QEMU */
static void test_guest_off(void)
{
    Guest g = {};
    char *out;

    guest_start(&g, false, false);
    out = wait_serial(&g, "END\n");
    assert_checks(out, generic_checks);
    g_assert_null(strstr(out, "ok tag-to-data"));
    g_assert_nonnull(strstr(out, "RESULT pass=24 fail=0\n"));
    guest_finish(&g, out);
}

static uint64_t tag_byte_addr(Guest *g, uint64_t pa)
{
    return g->carveout + (pa - RAM_BASE) / 32;
}

static void test_guest_on(void)
{
    Guest g = {};
    uint64_t buf = RAM_BASE + 512 * MiB / 2 + 5 * 0x10000;
    uint8_t bytes[32];
    g_autofree char *log = NULL;
    g_autofree char *mtree = NULL;
    char *out, *p;
    int lines = 0;

    guest_start(&g, true, true);
    g_free(wait_serial(&g, "STAGE 1\n"));

    /* The guest did STG with tag (i * 7) % 16 on granule i of buf */
    qtest_memread(g.qts, tag_byte_addr(&g, buf), bytes, sizeof(bytes));
    for (int j = 0; j < 32; j++) {
        uint8_t want = ((2 * j * 7) & 15) | (((2 * j + 1) * 7) & 15) << 4;

        g_assert_cmphex(bytes[j], ==, want);
    }
    /* Like DMA: write the tags of buf + 4K, granule i gets tag i % 16 */
    for (int j = 0; j < 32; j++) {
        bytes[j] = ((2 * j) & 15) | ((2 * j + 1) & 15) << 4;
    }
    qtest_memwrite(g.qts, tag_byte_addr(&g, buf + 0x1000), bytes,
                   sizeof(bytes));
    qtest_writeq(g.qts, MAILBOX + 40, 1);

    out = wait_serial(&g, "END\n");
    assert_checks(out, generic_checks);
    assert_checks(out, carveout_checks);
    g_assert_nonnull(strstr(out, "RESULT pass=48 fail=0\n"));

    /* The carveout is a named RAM region right after RAM */
    mtree = qtest_hmp(g.qts, "info mtree");
    g_assert_nonnull(strstr(mtree, "0000000060000000-0000000060ffffff "
                            "(prio 0, ram): mte-tag-storage"));

    /* One guest error line per carveout page accessed as Tagged */
    g_assert(g_file_get_contents(g.log, &log, NULL, NULL));
    for (p = log; (p = strstr(p, "Tagged access to tag storage")); p++) {
        lines++;
    }
    g_assert_cmpint(lines, ==, 2);
    g_assert_nonnull(strstr(log, "at 0x60fff000"));
    g_assert_nonnull(strstr(log, "at 0x60ffe000"));
    guest_finish(&g, out);
}

/*
 * tag-storage-memdev: the carveout is a shared file, which the host reads
 * and writes while the guest runs (the host stage of the guest program).
 */
static void test_memdev(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-memdev-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "tags", NULL);
    g_autofree char *extra = g_strdup_printf("-object memory-backend-file,"
                                             "id=ts,size=16M,share=on,"
                                             "mem-path=%s", file);
    Guest g = { .extra = extra };
    uint64_t buf, off;
    uint8_t bytes[32];
    char *out;
    int fd;

    guest_start_opts(&g, "tag-storage=on,tag-storage-memdev=ts",
                     FLAG_TAG_STORAGE | FLAG_HOST);
    buf = RAM_BASE + g.ram_size / 2 + 5 * 0x10000;
    off = (buf - RAM_BASE) / 32;
    g_free(wait_serial(&g, "STAGE 1\n"));

    /* Another process's view: the guest's STG tags are in the file */
    fd = open(file, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, bytes, sizeof(bytes), off), ==, sizeof(bytes));
    for (int j = 0; j < 32; j++) {
        uint8_t want = ((2 * j * 7) & 15) | (((2 * j + 1) * 7) & 15) << 4;

        g_assert_cmphex(bytes[j], ==, want);
    }
    /* and what it writes there are tags: granule i of buf + 4K gets i */
    for (int j = 0; j < 32; j++) {
        bytes[j] = ((2 * j) & 15) | ((2 * j + 1) & 15) << 4;
    }
    g_assert_cmpint(pwrite(fd, bytes, sizeof(bytes), off + 0x1000 / 32), ==,
                    sizeof(bytes));
    close(fd);
    qtest_writeq(g.qts, MAILBOX + 40, 1);

    out = wait_serial(&g, "END\n");
    assert_checks(out, generic_checks);
    assert_checks(out, carveout_checks);
    g_assert_nonnull(strstr(out, "RESULT pass=48 fail=0\n"));
    guest_finish(&g, out);
    unlink(file);
    rmdir(dir);
}

/* ---- the reuse checker (tag-storage-check) ---- */

/* Wait for the guest to reach stage @n; it waits for host_ack() */
static void host_wait(Guest *g, int n)
{
    g_autofree char *marker = g_strdup_printf("STAGE %d\n", n);

    g_free(wait_serial(g, marker));
}

static void host_ack(Guest *g, int n)
{
    qtest_writeq(g->qts, MAILBOX + 40, n);
}

/* The first region of query-mte-tag-storage (with its blocks) */
static QDict *query_region(Guest *g)
{
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': 'query-mte-tag-storage' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *region;

    g_assert(ret);
    region = qobject_to(QDict, qlist_peek(qdict_get_qlist(ret, "regions")));
    qobject_ref(region);
    qobject_unref(rsp);
    return region;
}

/* The violation counters, by rule R1 to R4 */
static void assert_counts(Guest *g, uint64_t r1, uint64_t r2, uint64_t r3,
                          uint64_t r4)
{
    QDict *region = query_region(g);
    QDict *v = qdict_get_qdict(region, "violations");

    g_assert_cmpuint(qdict_get_uint(v, "tag-read-of-data"), ==, r1);
    g_assert_cmpuint(qdict_get_uint(v, "data-read-of-tags"), ==, r2);
    g_assert_cmpuint(qdict_get_uint(v, "tagged-access-to-tag-storage"), ==,
                     r3);
    g_assert_cmpuint(qdict_get_uint(v, "tag-read-of-unwritten"), ==, r4);
    qobject_unref(region);
}

/* ... with init=zero, which never counts R4 */
static void assert_violations(Guest *g, uint64_t r1, uint64_t r2, uint64_t r3)
{
    assert_counts(g, r1, r2, r3, 0);
}

/* The last write a report or query names: @kind, on CPU @cpu at @pc */
static void assert_writer(QDict *w, const char *kind, int cpu, uint64_t pc)
{
    g_assert(w);
    g_assert_cmpstr(qdict_get_str(w, "kind"), ==, kind);
    g_assert_cmpuint(qdict_get_uint(w, "seq"), >, 0);
    if (cpu >= 0) {
        g_assert_cmpint(qdict_get_int(w, "cpu-index"), ==, cpu);
        g_assert_cmphex(qdict_get_uint(w, "pc"), ==, pc);
    } else {
        g_assert_false(qdict_haskey(w, "cpu-index"));
        g_assert_false(qdict_haskey(w, "pc"));
    }
}

/* A violation event and what it must say */
typedef struct Report {
    const char *rule;
    uint64_t paddr, ts_addr;
    int cpu;                /* the accessing CPU, -1 for DMA */
    uint64_t pc;
    const char *writer;     /* the culprit's kind, NULL: none */
    int writer_cpu;         /* -1 for DMA */
    uint64_t writer_pc;
    /* if not 0: the call chain's link registers and two frame returns */
    uint64_t lr, writer_lr, frame_ret[2];
} Report;

/* Pop the next violation event, which must be the one described */
static void assert_report(Guest *g, const Report *r)
{
    QDict *ev = qtest_qmp_event_ref(g->qts, "MTE_TAG_STORAGE_VIOLATION");
    QDict *data;

    g_assert(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "rule"), ==, r->rule);
    g_assert_cmphex(qdict_get_uint(data, "paddr"), ==, r->paddr);
    g_assert_cmphex(qdict_get_uint(data, "tag-storage-addr"), ==, r->ts_addr);
    if (r->cpu >= 0) {
        g_assert_cmpstr(qdict_get_str(data, "accessor"), ==, "cpu");
        g_assert_cmphex(qdict_get_uint(data, "pc"), ==, r->pc);
        g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, r->cpu);
    } else {
        g_assert_cmpstr(qdict_get_str(data, "accessor"), ==, "dma");
        g_assert_false(qdict_haskey(data, "pc"));
        g_assert_false(qdict_haskey(data, "cpu-index"));
    }
    if (r->lr) {
        QList *bt = qdict_get_qlist(data, "backtrace");
        const QListEntry *e = qlist_first(bt);

        g_assert_cmphex(qdict_get_uint(data, "lr"), ==, r->lr);
        g_assert_cmpint(qlist_size(bt), >=, ARRAY_SIZE(r->frame_ret));
        for (int i = 0; i < ARRAY_SIZE(r->frame_ret); i++) {
            QNum *ret = qobject_to(QNum, qlist_entry_obj(e));

            g_assert_cmphex(qnum_get_uint(ret), ==, r->frame_ret[i]);
            e = qlist_next(e);
        }
    }
    if (r->writer) {
        QDict *w = qdict_get_qdict(data, "writer");

        assert_writer(w, r->writer, r->writer_cpu, r->writer_pc);
        if (r->writer_lr) {
            g_assert_cmphex(qdict_get_uint(w, "lr"), ==, r->writer_lr);
        }
    } else {
        g_assert_false(qdict_haskey(data, "writer"));
    }
    qobject_unref(ev);
}

static void assert_event_pc(Guest *g, const char *rule, uint64_t paddr,
                            uint64_t ts_addr, bool from_cpu, uint64_t pc)
{
    Report r = { rule, paddr, ts_addr, from_cpu ? 0 : -1, pc };

    assert_report(g, &r);
}

/* ... at the instruction in MAILBOX[6] */
static void assert_event(Guest *g, const char *rule, uint64_t paddr,
                         uint64_t ts_addr, bool from_cpu)
{
    assert_event_pc(g, rule, paddr, ts_addr, from_cpu,
                    qtest_readq(g->qts, MAILBOX + 48));
}

/* The runs of last writers of [@base, @base + @size) of the carveout */
static QList *query_writer_runs(Guest *g, uint64_t base, uint64_t size)
{
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': 'query-mte-tag-storage', "
                           "'arguments': { 'base': %" PRIu64 ", 'size': %"
                           PRIu64 ", 'writers': true } }", base, size);
    QDict *region = qobject_to(QDict, qlist_peek(qdict_get_qlist(
                                   qdict_get_qdict(rsp, "return"),
                                   "regions")));
    QList *runs = qdict_get_qlist(region, "writers");

    qobject_ref(runs);
    qobject_unref(rsp);
    return runs;
}

/* The last tag write (@tags) or data write of the granule at @ts_addr */
static QDict *query_writer(Guest *g, uint64_t ts_addr, bool tags)
{
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': 'query-mte-tag-storage', "
                           "'arguments': { 'base': %" PRIu64 ", 'size': 16, "
                           "'writers': true } }", ts_addr);
    QDict *region = qobject_to(QDict, qlist_peek(qdict_get_qlist(
                                   qdict_get_qdict(rsp, "return"),
                                   "regions")));
    QList *runs = qdict_get_qlist(region, "writers");
    QDict *run = qobject_to(QDict, qlist_peek(runs));
    QDict *w;

    g_assert_cmpint(qlist_size(runs), ==, 1);
    g_assert_cmphex(qdict_get_uint(run, "base"), ==, ts_addr & ~15ull);
    g_assert_cmpuint(qdict_get_uint(run, "size"), ==, 16);
    w = qdict_get_qdict(run, tags ? "tag-writer" : "data-writer");
    qobject_ref(w);
    qobject_unref(rsp);
    return w;
}

static int drain_events(Guest *g)
{
    QDict *ev;
    int n = 0;

    while ((ev = qtest_qmp_event_ref(g->qts, "MTE_TAG_STORAGE_VIOLATION"))) {
        qobject_unref(ev);
        n++;
    }
    return n;
}

/*
 * Wait at most @max_ms until the VM is in run state @state.  Polls rather
 * than waits for STOP, which would drop other events.
 */
static void wait_run_state(QTestState *qts, const char *state, int max_ms)
{
    for (int i = 0;; i++) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        bool there = !strcmp(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                           "status"), state);

        qobject_unref(rsp);
        if (there) {
            return;
        }
        g_assert_cmpint(i, <, max_ms);
        g_usleep(1000);
    }
}

/* Stopped by check=stop: at the instruction in MAILBOX[6]; resume */
static void assert_stopped_at_access(Guest *g)
{
    g_autofree char *regs = NULL;
    g_autofree char *want = NULL;

    wait_run_state(g->qts, "debug", 10000);
    regs = qtest_hmp(g->qts, "info registers");
    want = g_strdup_printf("PC=%016" PRIx64,
                           qtest_readq(g->qts, MAILBOX + 48));
    if (!strstr(regs, want)) {
        g_test_message("want %s in: %s", want, regs);
    }
    g_assert_nonnull(strstr(regs, want));
    qtest_qmp_assert_success(g->qts, "{ 'execute': 'cont' }");
}

#define TAG_BYTE(g, pa) ((g)->carveout + ((pa) - RAM_BASE) / 32)

/*
 * The documented interleaved layout: within each block, the 128-byte
 * units (the tags of one 4 KiB page each) are in bit-reversed order
 */
static uint64_t interleaved_offset(uint64_t offset, uint64_t block)
{
    uint64_t units = block / 128, unit = offset % block / 128, rev = 0;

    for (uint64_t in = 1, out = units / 2; out; in <<= 1, out >>= 1) {
        if (unit & in) {
            rev |= out;
        }
    }
    return offset - offset % block + rev * 128 + offset % 128;
}

/*
 * mte-tag-fault-stop from QMP stops the VM before the fault takes effect,
 * and "info mte-tag-fault" names the carveout byte that holds the tag,
 * linear or interleaved (opaque: the block size, 0 for linear)
 */
static void test_fault_stop_qmp(const void *opaque)
{
    uint64_t block = GPOINTER_TO_SIZE(opaque);
    g_autofree char *machine = block ?
        g_strdup_printf("tag-storage=on,tag-storage-interleave=on,"
                        "tag-storage-block-size=%" PRIu64, block) :
        g_strdup("tag-storage=on");
    Guest g = {};
    g_autofree char *info = NULL;
    g_autofree char *out = NULL;
    g_autofree char *want = NULL;
    const char *pa;
    uint64_t paddr, offset;

    guest_launch(&g, machine);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'mte-tag-fault-stop',"
                             "  'arguments': { 'enable': true } }");
    guest_go(&g, FLAG_TAG_STORAGE | FLAG_GDB);
    wait_run_state(g.qts, "debug", 60000);

    info = qtest_hmp(g.qts, "info mte-tag-fault");
    pa = strstr(info, "physical addr   0x");
    if (!strstr(info, "VM stopped before it took effect") ||
        !strstr(info, "logical tag     0x5") ||
        !strstr(info, "allocation tag  0x3") || !pa) {
        g_test_message("info mte-tag-fault: %s", info);
        g_assert_not_reached();
    }
    paddr = g_ascii_strtoull(pa + strlen("physical addr   0x"), NULL, 16);
    offset = (paddr - RAM_BASE) / 32;
    if (block) {
        offset = interleaved_offset(offset, block);
        /* the test means something only if the layouts differ here */
        g_assert_cmphex(offset, !=, (paddr - RAM_BASE) / 32);
    }
    want = g_strdup_printf("tag byte        guest PA 0x%" PRIx64 ", %s nibble",
                           g.carveout + offset,
                           (paddr >> 4) & 1 ? "high" : "low");
    if (!strstr(info, want)) {
        g_test_message("info mte-tag-fault: %s", info);
        g_test_message("expected: %s", want);
        g_assert_not_reached();
    }
    /* and that byte holds the allocation tag */
    g_assert_cmphex(qtest_readb(g.qts, g.carveout + offset) >>
                    ((paddr >> 4) & 1 ? 4 : 0) & 0xf, ==, 0x3);
    out = wait_serial(&g, "GDB scenario ready");
    g_assert_null(strstr(out, "GDB fault delivered"));

    qtest_qmp_assert_success(g.qts, "{ 'execute': 'mte-tag-fault-stop',"
                             "  'arguments': { 'enable': false } }");
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'cont' }");
    g_free(wait_serial(&g, "GDB fault delivered"));
    qtest_quit(g.qts);
    guest_cleanup(&g);
}

/* mte-tag-fault-stop explains why it cannot work without MTE tags */
static void test_fault_stop_no_mte(void)
{
    QTestState *qts = qtest_init("-accel tcg -M virt -cpu max -nic none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'mte-tag-fault-stop',"
                           "  'arguments': { 'enable': true } }");
    QDict *err = qdict_get_qdict(rsp, "error");

    g_assert_nonnull(err);
    g_assert_cmpstr(qdict_get_str(err, "desc"), ==,
                    "no CPU has MTE with allocation tags");
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* The rules R1 to R4, as QMP names them */
#define R1 "tag-read-of-data"
#define R2 "data-read-of-tags"
#define R3 "tagged-access-to-tag-storage"
#define R4 "tag-read-of-unwritten"

/* What the host expects after one stage of check_scenario() */
typedef struct CheckStage {
    const char *rule;
    uint64_t paddr, ts_addr, r1, r2, r3;
    const char *writer;     /* the culprit, at the PC in MAILBOX[10] */
} CheckStage;

static void test_check(const void *opaque)
{
    const char *policy = opaque;
    bool event = strcmp(policy, "log") != 0;
    bool stop = !strcmp(policy, "stop");
    g_autofree char *machine = g_strdup_printf("tag-storage=on,"
                                               "tag-storage-check=%s",
                                               policy);
    Guest g = {};
    uint64_t a, b, c, d, self;
    CheckStage stage[3];
    QDict *region;
    QList *blocks;
    char *out;
    int events;

    guest_start_opts(&g, machine, FLAG_TAG_STORAGE | FLAG_HOST | FLAG_CHECK);
    a = RAM_BASE + g.ram_size / 2 + 7 * 0x10000;
    b = a + 0x10000;
    c = b + 0x10000;
    d = c + 0x10000;
    self = g.carveout + 0x1000;

    /* clean: 64 STG, then reads and checks; no data access, no report */
    host_wait(&g, 10);
    region = query_region(&g);
    g_assert_cmpuint(qdict_get_uint(region, "tag-writes"), ==, 64);
    g_assert_cmpuint(qdict_get_uint(region, "tag-reads"), >=, 64 + 64 + 1);
    g_assert_cmpuint(qdict_get_uint(region, "data-reads"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(region, "data-writes"), ==, 0);
    /* the block holding a's tags is tag-owned, the rest never written */
    blocks = qdict_get_qlist(region, "blocks");
    g_assert_cmpint(qlist_size(blocks), ==, 3);
    {
        QDict *mid = qobject_to(QDict, qlist_entry_obj(
                                    qlist_next(qlist_first(blocks))));

        g_assert_cmphex(qdict_get_uint(mid, "base"), ==,
                        TAG_BYTE(&g, a) & ~0xfffull);
        g_assert_cmpuint(qdict_get_uint(mid, "size"), ==, 4096);
        g_assert_cmpstr(qdict_get_str(mid, "owner"), ==, "tag");
    }
    qobject_unref(region);
    assert_violations(&g, 0, 0, 0);
    g_assert_cmpint(drain_events(&g), ==, 0);
    host_ack(&g, 10);

    /*
     * Stage 11: R1, LDG of a byte the guest wrote as data.
     * Stage 12: R2, LDRB of a byte written by STG.
     * Stage 13: R3, a Tagged load from the carveout.
     */
    stage[0] = (CheckStage) { R1, b, TAG_BYTE(&g, b), 1, 0, 0 };
    stage[0].writer = "data-store";
    stage[1] = (CheckStage) { R2, c, TAG_BYTE(&g, c), 1, 1, 0 };
    stage[1].writer = "tag-store";
    stage[2] = (CheckStage) { R3, self, self, 1, 1, 2 };
    for (int i = 0; i < ARRAY_SIZE(stage); i++) {
        if (stop) {
            assert_stopped_at_access(&g);
        }
        if (stop && i == 2) {
            assert_stopped_at_access(&g);   /* the STG */
        }
        host_wait(&g, 11 + i);
        assert_violations(&g, stage[i].r1, stage[i].r2, stage[i].r3);
        if (event && i == 2) {
            /* a Tagged load, then an STG in the middle of its TB */
            assert_event_pc(&g, R3, self, self, true,
                            qtest_readq(g.qts, MAILBOX + 72));
            assert_event(&g, R3, self + 16, self + 16, true);
        } else if (event) {
            Report r = { stage[i].rule, stage[i].paddr, stage[i].ts_addr, 0,
                         qtest_readq(g.qts, MAILBOX + 48), stage[i].writer, 0,
                         qtest_readq(g.qts, MAILBOX + 80) };

            if (i == 0) {
                /* the R1 stage's call chain: see bt_outer in the guest */
                r.lr = r.writer_lr = qtest_readq(g.qts, MAILBOX + 104);
                r.frame_ret[0] = qtest_readq(g.qts, MAILBOX + 112);
                r.frame_ret[1] = qtest_readq(g.qts, MAILBOX + 96);
            }
            assert_report(&g, &r);
        }
        if (stage[i].writer) {
            /* what the log line named, from the query */
            QDict *w = query_writer(&g, stage[i].ts_addr, i == 1);

            assert_writer(w, stage[i].writer, 0,
                          qtest_readq(g.qts, MAILBOX + 80));
            if (i == 0) {
                g_assert_cmphex(qdict_get_uint(w, "lr"), ==,
                                qtest_readq(g.qts, MAILBOX + 104));
            }
            qobject_unref(w);
        }
        host_ack(&g, 11 + i);
    }

    /* The same R2 CHECK_FLOOD times: all counted, reports rate limited */
    for (int i = 0; stop && i < CHECK_FLOOD; i++) {
        assert_stopped_at_access(&g);
    }
    host_wait(&g, 14);
    assert_violations(&g, 1, 1 + CHECK_FLOOD, 2);
    events = drain_events(&g);
    if (stop) {
        g_assert_cmpint(events, ==, CHECK_FLOOD);   /* stops are not limited */
    } else if (event) {
        g_assert_cmpint(events, >=, 1);
        g_assert_cmpint(events, <=, REPORTS_PER_SEC);
    }
    /* A DMA-like read of tags: R2 with no CPU */
    g_assert_cmphex(qtest_readb(g.qts, TAG_BYTE(&g, a)), ==, 0x10);
    assert_violations(&g, 1, 2 + CHECK_FLOOD, 2);
    if (event) {
        g_usleep(1100 * 1000);  /* a new rate limit window */
        g_assert_cmphex(qtest_readb(g.qts, TAG_BYTE(&g, a + 32)), ==, 0x32);
        drain_events(&g);
        assert_violations(&g, 1, 3 + CHECK_FLOOD, 2);
    }
    /* The monitor only looks: xp and pmemsave of tags are no violation */
    {
        g_autofree char *xp = qtest_hmp(g.qts, "xp /16xb 0x%" PRIx64,
                                        TAG_BYTE(&g, a));
        g_autofree char *dump = g_build_filename(g.dir, "tags.bin", NULL);
        g_autofree char *bytes = NULL;
        gsize len;

        g_assert_nonnull(strstr(xp, "0x10 0x32"));
        qtest_qmp_assert_success(g.qts, "{ 'execute': 'pmemsave', "
                                 "'arguments': { 'val': %" PRIu64 ", "
                                 "'size': 32, 'filename': %s } }",
                                 TAG_BYTE(&g, a), dump);
        g_assert_true(g_file_get_contents(dump, &bytes, &len, NULL));
        g_assert_cmpuint(len, ==, 32);
        g_assert_cmphex((uint8_t)bytes[1], ==, 0x32);
        unlink(dump);
        assert_violations(&g, 1, (event ? 3 : 2) + CHECK_FLOOD, 2);
    }
    host_ack(&g, 14);
    host_wait(&g, 15);
    /* Events of the reads above may come after their qtest replies */
    assert_violations(&g, 1, (event ? 3 : 2) + CHECK_FLOOD, 2);
    drain_events(&g);
    /* A device writes d's tag byte; the guest reads it with LDG: R1 */
    qtest_writeb(g.qts, TAG_BYTE(&g, d), 0x76);
    host_ack(&g, 15);
    if (stop) {
        assert_stopped_at_access(&g);
    }
    host_wait(&g, 16);
    assert_violations(&g, 2, (event ? 3 : 2) + CHECK_FLOOD, 2);
    if (event) {
        Report r = { R1, d, TAG_BYTE(&g, d), 0,
                     qtest_readq(g.qts, MAILBOX + 48), "dma", -1 };

        assert_report(&g, &r);
    }
    {
        QDict *w = query_writer(&g, TAG_BYTE(&g, d), false);

        assert_writer(w, "dma", -1, 0);
        g_assert_false(qdict_haskey(w, "requester-id"));
        qobject_unref(w);
    }
    host_ack(&g, 16);

    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "clean", "r1-ldg-reads-data", "r2-ldrb-reads-tag", "r3-load-untagged",
        "r1-ldg-reads-dma", "check-scenario", NULL });
    g_assert_nonnull(strstr(out, "RESULT pass=6 fail=0\n"));
    guest_finish(&g, out);
}

/*
 * DC ZVA of data in the carveout while checking (guest bench case 9, one
 * pass over its last MiB): the carveout is I/O memory for the CPU then,
 * and the blocks are zeroed as data written by that CPU, in 8-byte
 * stores; byte stores, as for other I/O memory, would cost the checker 8
 * times the work for each block a reuse kernel's clear_page zeroes
 */
static void test_check_dc_zva(void)
{
    Guest g = { .args = { 9, 1 }, .extra = "-no-shutdown" };
    uint64_t len = 1 * MiB, before, z;
    g_autofree char *out = NULL;
    QDict *region, *w;

    guest_launch(&g, "tag-storage=on,tag-storage-check=log");
    z = g.carveout + g.ram_size / 32 - len;
    qtest_writeq(g.qts, z + 0x48, 0x1122334455667788ull);
    qtest_writeq(g.qts, z + len - 8, ~0ull);
    qtest_writeq(g.qts, z - 8, 0x5a5a5a5a5a5a5a5aull);
    region = query_region(&g);
    before = qdict_get_uint(region, "data-writes");
    qobject_unref(region);
    guest_go(&g, FLAG_TAG_STORAGE | FLAG_BENCH);
    out = wait_serial(&g, "END\n");

    region = query_region(&g);
    g_assert_cmpuint(qdict_get_uint(region, "data-writes") - before, ==,
                     len / 8);
    qobject_unref(region);
    g_assert_cmphex(qtest_readq(g.qts, z + 0x48), ==, 0);
    g_assert_cmphex(qtest_readq(g.qts, z + len - 8), ==, 0);
    g_assert_cmphex(qtest_readq(g.qts, z - 8), ==, 0x5a5a5a5a5a5a5a5aull);
    w = query_writer(&g, z + 0x40, false);
    g_assert_cmpstr(qdict_get_str(w, "kind"), ==, "data-store");
    g_assert_cmpint(qdict_get_int(w, "cpu-index"), ==, 0);
    g_assert_cmphex(qdict_get_uint(w, "pc"), >=, RAM_BASE);
    qobject_unref(w);
    assert_counts(&g, 0, 0, 0, 0);
    guest_finish(&g, g_steal_pointer(&out));
}

/* With the checker off, nothing is counted and blocks are not reported */
/*
 * The guest's virtual time, under -icount, when its loop of @passes
 * passes of STG over 32 MiB ends: the instructions it ran
 */
static uint64_t icount_stg_loop(const char *machine, uint64_t passes)
{
    Guest g = { .extra = "-icount shift=0,sleep=off",
                .args = { 0, passes } };
    g_autofree char *out = NULL;
    const char *t;

    guest_start_opts(&g, machine, FLAG_TAG_STORAGE | FLAG_BENCH);
    out = wait_serial(&g, "END\n");
    t = strstr(out, "# cntvct 0x");
    g_assert_nonnull(t);
    qtest_quit(g.qts);
    guest_cleanup(&g);
    return g_ascii_strtoull(t + strlen("# cntvct "), NULL, 16);
}

/*
 * The checker only watches: it records the PC of every tag store, but
 * the guest runs the same instructions, so under -icount its clock reads
 * the same as without the checker (a PC found by restoring the CPU state
 * gave the rest of the TB back to the instruction budget, so time ran
 * slow)
 */
static void test_check_icount(void)
{
    uint64_t off = icount_stg_loop("tag-storage=on", 1);
    uint64_t log = icount_stg_loop("tag-storage=on,tag-storage-check=log", 1);

    g_assert_cmpuint(off, >, 0);
    g_assert_cmpuint(log, ==, off);
}

static void test_check_off(void)
{
    Guest g = {};
    QDict *region, *rsp;
    char *out;

    guest_start_opts(&g, "tag-storage=on",
                     FLAG_TAG_STORAGE | FLAG_HOST | FLAG_CHECK);
    for (int n = 10; n <= 16; n++) {
        host_wait(&g, n);
        if (n == 15) {
            /* the tag the guest's LDG is to read */
            qtest_writeb(g.qts, TAG_BYTE(&g, RAM_BASE + g.ram_size / 2 +
                                         10 * 0x10000), 0x76);
        }
        host_ack(&g, n);
    }
    out = wait_serial(&g, "END\n");
    region = query_region(&g);
    g_assert_cmpuint(qdict_get_uint(region, "tag-writes"), ==, 0);
    g_assert_false(qdict_haskey(region, "blocks"));
    qobject_unref(region);
    assert_violations(&g, 0, 0, 0);
    rsp = qtest_qmp(g.qts, "{ 'execute': 'query-mte-tag-storage', "
                    "'arguments': { 'size': 4096 } }");
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    guest_finish(&g, out);
}

/*
 * With the checker on, DMA to the carveout is bounced: PCI devices may
 * have all of tag storage in flight (QEMU's default is 4 KiB)
 */
static void test_check_dma_bounce(const void *opaque)
{
    const char *check = opaque;
    QTestState *qts = qtest_initf("-accel tcg -M virt,mte=on,tag-storage=on,"
                                  "tag-storage-check=%s -cpu max -m 512M -S "
                                  "-nic none -device virtio-rng-pci,id=rng",
                                  check);
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': '/machine/peripheral/rng', "
                           "'property': 'x-max-bounce-buffer-size' } }");

    g_assert_cmpuint(qdict_get_uint(rsp, "return"), ==,
                     strcmp(check, "off") ? 512 * MiB / 32 : 4096);
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* R4, with tag-storage-init=@opaque: counted for random, never for zero */
static void test_r4(const void *opaque)
{
    bool random = !strcmp(opaque, "random");
    g_autofree char *machine = g_strdup_printf(
        "tag-storage=on,tag-storage-check=event,tag-storage-init=%s%s",
        (const char *)opaque, random ? ",tag-storage-init-seed=1234" : "");
    Guest g = {};
    uint64_t a, p;
    QDict *rsp, *info;
    char *out;

    guest_start_opts(&g, machine, FLAG_TAG_STORAGE | FLAG_HOST | FLAG_R4);
    a = RAM_BASE + g.ram_size / 2 + 11 * 0x10000;

    rsp = qtest_qmp(g.qts, "{ 'execute': 'query-mte-tag-storage' }");
    info = qdict_get_qdict(rsp, "return");
    g_assert_cmpstr(qdict_get_str(info, "init"), ==, opaque);
    g_assert_cmpint(qdict_haskey(info, "init-seed"), ==, random);
    if (random) {
        g_assert_cmpuint(qdict_get_uint(info, "init-seed"), ==, 1234);
    }
    qobject_unref(rsp);

    /* LDG, a tag check, LDGM: one R4 each, at the instruction */
    for (int n = 20; n <= 22; n++) {
        host_wait(&g, n);
        assert_counts(&g, 0, 0, 0, random ? n - 19 : 0);
        if (random) {
            Report r = { R4, 0, 0, 0, qtest_readq(g.qts, MAILBOX + 48) };

            p = n == 20 ? a : a + 0x1000;
            if (n == 21) {
                /* the first granule from a + 32 with a non-zero tag */
                for (p = a + 32; !(qtest_readb(g.qts, TAG_BYTE(&g, p)) &
                                   0xf); p += 32) {
                    continue;
                }
            }
            r.paddr = p;
            r.ts_addr = TAG_BYTE(&g, p);
            assert_report(&g, &r);
        }
        g_assert_cmpint(drain_events(&g), ==, 0);
        host_ack(&g, n);
    }
    /* written tags: no R4; a data write then LDG is R1, naming the store */
    host_wait(&g, 23);
    assert_counts(&g, 1, 0, 0, random ? 3 : 0);
    {
        Report r = { R1, a + 0x3000, TAG_BYTE(&g, a + 0x3000), 0,
                     qtest_readq(g.qts, MAILBOX + 48), "data-store", 0,
                     qtest_readq(g.qts, MAILBOX + 80) };

        assert_report(&g, &r);
    }
    g_assert_cmpint(drain_events(&g), ==, 0);
    host_ack(&g, 23);

    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "r4-ldg-reads-storage", "r4-checked-load-passes",
        "r4-ldgm-reads-storage", "r4-stg-ldg", "r4-data-then-ldg-is-r1",
        "r4-scenario", NULL });
    guest_finish(&g, out);
}

/*
 * mte-tag-fault-stop with the reuse checker on.  When the VM stops on a
 * tag check fault, QEMU reads the allocation tag of the faulting granule
 * again for "info mte-tag-fault": that is QEMU's own look, no guest
 * access, so the guest's checked load stays the only tag read counted and
 * the only violation reported, R4 for a tag nothing wrote (init=random)
 * or R1 for a tag byte last written as data, not two.
 */
typedef struct FaultStopCase {
    const char *machine;
    bool data_owned;    /* MAILBOX[4]: the guest writes the tag byte first */
} FaultStopCase;

static void test_fault_stop_check(const void *opaque)
{
    const FaultStopCase *c = opaque;
    bool event = strstr(c->machine, "tag-storage-check=event") != NULL;
    uint64_t r1 = c->data_owned, r4 = !c->data_owned;
    Guest g = { .args = { c->data_owned } };
    g_autofree char *info = NULL;
    g_autofree char *want = NULL;
    uint64_t p, reads, pc;
    unsigned alloc, logical;
    QDict *region;
    char *out;

    guest_launch(&g, c->machine);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'mte-tag-fault-stop',"
                             "  'arguments': { 'enable': true } }");
    guest_go(&g, FLAG_TAG_STORAGE | FLAG_HOST | FLAG_FAULT_STOP);
    p = RAM_BASE + g.ram_size / 2 + 14 * 0x10000;

    /* before the load: no tag read yet (TCMA0), no violation */
    host_wait(&g, 40);
    region = query_region(&g);
    reads = qdict_get_uint(region, "tag-reads");
    g_assert_cmpuint(reads, ==, 0);
    qobject_unref(region);
    assert_counts(&g, 0, 0, 0, 0);
    g_assert_cmpint(drain_events(&g), ==, 0);
    pc = qtest_readq(g.qts, MAILBOX + 48);
    /* the guest's logical tag: the allocation tag plus one, never 0 */
    alloc = qtest_readb(g.qts, TAG_BYTE(&g, p)) & 0xf;
    logical = alloc % 15 + 1;
    if (c->data_owned) {
        g_assert_cmphex(alloc, ==, 0x6);    /* the guest's STRB of 0x96 */
    }
    host_ack(&g, 40);

    wait_run_state(g.qts, "debug", 60000);
    info = qtest_hmp(g.qts, "info mte-tag-fault");
    want = g_strdup_printf("(pc 0x%" PRIx64 "), VM stopped before it took "
                           "effect\r\n  logical tag     0x%x\r\n"
                           "  allocation tag  0x%x\r\n"
                           "  physical addr   0x%" PRIx64 "\r\n",
                           pc, logical, alloc, p);
    if (!strstr(info, want)) {
        g_test_message("info mte-tag-fault: %s", info);
        g_test_message("expected: %s", want);
        g_assert_not_reached();
    }
    /* one report and one tag read, both the guest's load */
    assert_counts(&g, r1, 0, 0, r4);
    region = query_region(&g);
    g_assert_cmpuint(qdict_get_uint(region, "tag-reads"), ==, reads + 1);
    qobject_unref(region);
    if (event) {
        Report r = { c->data_owned ? R1 : R4, p, TAG_BYTE(&g, p), 0, pc };

        if (c->data_owned) {
            r.writer = "data-store";
            r.writer_pc = qtest_readq(g.qts, MAILBOX + 80);
        }
        assert_report(&g, &r);
    }
    g_assert_cmpint(drain_events(&g), ==, 0);

    /*
     * On resume the load runs again and the fault proceeds: the guest
     * made one access, which the checker counted and reported before the
     * stop, so nothing more
     */
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'cont' }");
    host_wait(&g, 41);
    assert_counts(&g, r1, 0, 0, r4);
    region = query_region(&g);
    g_assert_cmpuint(qdict_get_uint(region, "tag-reads"), ==, reads + 1);
    qobject_unref(region);
    g_assert_cmpint(drain_events(&g), ==, 0);
    host_ack(&g, 41);

    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "fault-stop-delivered", "fault-stop-far", "fault-stop-suppressed",
        "fault-stop-scenario", NULL });
    g_assert_nonnull(strstr(out, "RESULT pass=4 fail=0\n"));
    guest_finish(&g, out);
}

/* 4 KiB of carveout from @off, as the host sees it */
static uint8_t *read_carveout(QTestState *qts, uint64_t off)
{
    uint8_t *buf = g_malloc(4096);

    qtest_memread(qts, RAM_BASE + 512 * MiB + off, buf, 4096);
    return buf;
}

/*
 * tag-storage-init=random: garbage, the same at every reset, from the
 * seed alone (the one reported when QEMU chose it); zero otherwise
 */
static void test_init_random(void)
{
    const char *opts = "-accel tcg -M virt,mte=on,tag-storage=on,"
                       "tag-storage-init=random%s -cpu max -m 512M -S "
                       "-nic none";
    QTestState *qts = qtest_initf(opts, ",tag-storage-init-seed=42");
    QTestState *other;
    g_autofree uint8_t *first = read_carveout(qts, 0x1000);
    g_autofree uint8_t *last = read_carveout(qts, 16 * MiB - 4096);
    g_autofree uint8_t *again = NULL, *seed43 = NULL, *chosen = NULL;
    g_autofree uint8_t *zero = NULL;
    g_autofree char *hmp = NULL;
    uint64_t seed;
    QDict *rsp;
    int nonzero = 0;

    for (int i = 0; i < 4096; i++) {
        nonzero += first[i] != 0;
    }
    g_assert_cmpint(nonzero, >, 4000);      /* 4080 expected */
    g_assert_cmpint(memcmp(first, last, 4096), !=, 0);

    /* a reset brings the same garbage back, over what was written */
    qtest_memset(qts, RAM_BASE + 512 * MiB + 0x1000, 0x5a, 64);
    qtest_qmp_assert_success(qts, "{ 'execute': 'system_reset' }");
    again = read_carveout(qts, 0x1000);
    g_assert_cmpint(memcmp(first, again, 4096), ==, 0);
    hmp = qtest_hmp(qts, "info mte-tag-storage");
    g_assert_nonnull(strstr(hmp, "init random seed 42\r\n"));
    qtest_quit(qts);

    /* another seed, other garbage */
    qts = qtest_initf(opts, ",tag-storage-init-seed=43");
    seed43 = read_carveout(qts, 0x1000);
    g_assert_cmpint(memcmp(first, seed43, 4096), !=, 0);
    qtest_quit(qts);

    /* no seed: QEMU picks one, and that one reproduces the contents */
    qts = qtest_initf(opts, "");
    chosen = read_carveout(qts, 0x1000);
    rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage' }");
    seed = qdict_get_uint(qdict_get_qdict(rsp, "return"), "init-seed");
    qobject_unref(rsp);
    other = qtest_initf("-accel tcg -M virt,mte=on,tag-storage=on,"
                        "tag-storage-init=random,tag-storage-init-seed=%"
                        PRIu64 " -cpu max -m 512M -S -nic none", seed);
    g_free(again);
    again = read_carveout(other, 0x1000);
    g_assert_cmpint(memcmp(chosen, again, 4096), ==, 0);
    qtest_quit(other);
    qtest_quit(qts);

    /* the default is zero */
    qts = qtest_init("-accel tcg -M virt,mte=on,tag-storage=on -cpu max "
                     "-m 512M -S -nic none");
    zero = read_carveout(qts, 0x1000);
    g_assert_true(buffer_is_zero(zero, 4096));
    rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "init"), ==,
                    "zero");
    g_assert_false(qdict_haskey(qdict_get_qdict(rsp, "return"), "init-seed"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* -smp 2: each report names the other CPU's write as the culprit */
static void test_smp(void)
{
    Guest g = { .extra = "-smp 2" };
    uint64_t d, e;
    char *out;

    guest_start_opts(&g, "tag-storage=on,tag-storage-check=event",
                     FLAG_TAG_STORAGE | FLAG_HOST | FLAG_SMP);
    d = RAM_BASE + g.ram_size / 2 + 12 * 0x10000;
    e = d + 0x10000;

    host_wait(&g, 30);
    assert_violations(&g, 1, 0, 0);
    {
        Report r = { R1, d, TAG_BYTE(&g, d), 0,
                     qtest_readq(g.qts, MAILBOX + 48), "data-store", 1,
                     qtest_readq(g.qts, MAILBOX + 80) };

        assert_report(&g, &r);
    }
    host_ack(&g, 30);
    host_wait(&g, 31);
    assert_violations(&g, 1, 1, 0);
    {
        Report r = { R2, e, TAG_BYTE(&g, e), 1,
                     qtest_readq(g.qts, MAILBOX + 48), "tag-store", 0,
                     qtest_readq(g.qts, MAILBOX + 80) };

        assert_report(&g, &r);
    }
    host_ack(&g, 31);
    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "smp-cpu-on", "smp-ldg-reads-cpu1-data", "smp-cpu1-reads-cpu0-tags",
        "smp-scenario", NULL });
    guest_finish(&g, out);
}

/* 'writers' needs a bounded range; HMP shows the writers too */
/* The first region of a query-mte-tag-storage reply from @base */
static QDict *query_region_from(QTestState *qts, uint64_t base,
                                QDict **rsp)
{
    *rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage', "
                     "'arguments': { 'base': %" PRIu64 " } }", base);
    return qobject_to(QDict, qlist_peek(qdict_get_qlist(
                          qdict_get_qdict(*rsp, "return"), "regions")));
}

/*
 * A reply holds at most 4096 runs of blocks, and says where to go on.
 * The carveout of 1 GiB has 8192 blocks of 4 KiB.  Data in blocks 0, 2,
 * ..., 4094 gives 4095 alternating runs and one never-written run to the
 * end: 4096, which fit.  Data in block 4096 as well gives 4098 runs: the
 * reply stops before block 4096, and the next one from there holds the
 * last two.
 */
static void test_blocks_query_pages(void)
{
    QTestState *qts = qtest_init("-accel tcg -M virt,mte=on,tag-storage=on,"
                                 "tag-storage-check=log -cpu max -m 1G -S "
                                 "-nic none");
    uint64_t ts = RAM_BASE + GiB;
    uint64_t next = ts + 4096 * 4096;
    g_autofree char *hmp = NULL;
    g_autofree char *more = NULL;
    QDict *rsp, *region, *run;
    QList *runs;

    for (uint64_t b = 0; b <= 4094; b += 2) {
        qtest_writeb(qts, ts + b * 4096, 1);
    }
    region = query_region_from(qts, ts, &rsp);
    g_assert_cmpint(qlist_size(qdict_get_qlist(region, "blocks")), ==, 4096);
    g_assert(!qdict_haskey(region, "blocks-next"));
    qobject_unref(rsp);

    qtest_writeb(qts, next, 1);
    region = query_region_from(qts, ts, &rsp);
    runs = qdict_get_qlist(region, "blocks");
    g_assert_cmpint(qlist_size(runs), ==, 4096);
    g_assert_cmphex(qdict_get_uint(region, "blocks-next"), ==, next);
    qobject_unref(rsp);

    region = query_region_from(qts, next, &rsp);
    runs = qdict_get_qlist(region, "blocks");
    g_assert_cmpint(qlist_size(runs), ==, 2);
    run = qobject_to(QDict, qlist_peek(runs));
    g_assert_cmphex(qdict_get_uint(run, "base"), ==, next);
    g_assert_cmpuint(qdict_get_uint(run, "size"), ==, 4096);
    g_assert_cmpstr(qdict_get_str(run, "owner"), ==, "data");
    g_assert(!qdict_haskey(region, "blocks-next"));
    qobject_unref(rsp);

    hmp = qtest_hmp(qts, "info mte-tag-storage");
    more = g_strdup_printf("more blocks from 0x%" PRIx64 ":", next);
    g_assert_nonnull(strstr(hmp, more));
    qtest_quit(qts);
}

static void test_writers_query(void)
{
    QTestState *qts = qtest_init("-accel tcg -M virt,mte=on,tag-storage=on,"
                                 "tag-storage-check=log -cpu max -m 512M -S "
                                 "-nic none");
    uint64_t ts = RAM_BASE + 512 * MiB;
    g_autofree char *hmp = NULL;
    QDict *rsp;

    rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage', "
                    "'arguments': { 'writers': true } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "'writers' needs 'base' and a 'size' of at most 65536");
    qobject_unref(rsp);
    rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage', "
                    "'arguments': { 'writers': true, 'base': %" PRIu64 ", "
                    "'size': 65537 } }", ts);
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);

    /* a write by qtest (DMA) to granule 1: three runs */
    qtest_writeb(qts, ts + 16, 0x11);
    rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage', "
                    "'arguments': { 'writers': true, 'base': %" PRIu64 ", "
                    "'size': 65536 } }", ts);
    {
        QDict *region = qobject_to(QDict, qlist_peek(qdict_get_qlist(
                                       qdict_get_qdict(rsp, "return"),
                                       "regions")));
        QList *runs = qdict_get_qlist(region, "writers");
        const QListEntry *e = qlist_first(runs);
        QDict *run;

        g_assert_cmpint(qlist_size(runs), ==, 3);
        run = qobject_to(QDict, qlist_entry_obj(e));
        g_assert_cmpuint(qdict_get_uint(run, "size"), ==, 16);
        g_assert_false(qdict_haskey(run, "data-writer"));
        run = qobject_to(QDict, qlist_entry_obj(qlist_next(e)));
        g_assert_cmphex(qdict_get_uint(run, "base"), ==, ts + 16);
        assert_writer(qdict_get_qdict(run, "data-writer"), "dma", -1, 0);
        g_assert_cmpuint(qdict_get_uint(qdict_get_qdict(run, "data-writer"),
                                        "seq"), ==, 1);
        g_assert_false(qdict_haskey(run, "tag-writer"));
        run = qobject_to(QDict, qlist_entry_obj(qlist_next(qlist_next(e))));
        g_assert_cmpuint(qdict_get_uint(run, "size"), ==, 65536 - 32);
    }
    qobject_unref(rsp);
    hmp = qtest_hmp(qts, "info mte-tag-storage -w 0x%" PRIx64 " 48", ts);
    g_assert_nonnull(strstr(hmp, "tags: nothing since reset; data: dma, "
                            "write #1\r\n"));
    qtest_quit(qts);
}

/* Without tag storage the command fails with a hint */
static void test_check_absent(void)
{
    QTestState *qts = qtest_init("-M virt -nic none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-mte-tag-storage' }");
    g_autofree char *hmp = qtest_hmp(qts, "info mte-tag-storage");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "this machine has no MTE tag storage");
    g_assert_nonnull(strstr(hmp, "no MTE tag storage"));
    qobject_unref(rsp);
    qtest_quit(qts);
}

/* ---- randomized differential test ---- */

/*
 * The guest runs MTS_RANDOM_OPS (default 1000000) random tag and data
 * operations from seed MTS_RANDOM_SEED (default: from the test's own
 * random seed, so --seed reproduces a run) against its reference model.
 */
static void test_random(const void *opaque)
{
    int tag_storage = GPOINTER_TO_INT(opaque);   /* 2: interleaved */
    const char *env_seed = g_getenv("MTS_RANDOM_SEED");
    const char *env_ops = g_getenv("MTS_RANDOM_OPS");
    uint64_t seed = env_seed ? g_ascii_strtoull(env_seed, NULL, 0) :
                    (uint64_t)(uint32_t)g_test_rand_int() << 32 |
                    (uint32_t)g_test_rand_int();
    uint64_t ops = env_ops ? g_ascii_strtoull(env_ops, NULL, 0) : 1000000;
    g_autofree char *want = g_strdup_printf("# random ops done %" PRIu64 "\n",
                                            ops);
    Guest g = {};
    char *out;

    g_test_message("MTS_RANDOM_SEED=0x%" PRIx64 " MTS_RANDOM_OPS=%" PRIu64,
                   seed, ops);
    g.args[0] = seed;
    g.args[1] = ops;
    if (tag_storage == 2) {
        g.block = 8192;
        guest_start_opts(&g, "tag-storage=on,tag-storage-block-size=8K,"
                         "tag-storage-interleave=on",
                         FLAG_TAG_STORAGE | FLAG_RANDOM | FLAG_INTERLEAVE);
    } else {
        guest_start_opts(&g, tag_storage ? "tag-storage=on" :
                         "tag-storage=off",
                         (tag_storage ? FLAG_TAG_STORAGE : 0) | FLAG_RANDOM);
    }
    out = wait_serial(&g, "END\n");
    if (!strstr(out, want) || strstr(out, "not ok")) {
        g_test_message("guest output: %s", out);
    }
    g_assert_nonnull(strstr(out, want));
    g_assert_nonnull(strstr(out, "\nok random-ops\n"));
    guest_finish(&g, out);
}

/* ---- tag-storage-interleave ---- */

/* The whole guest suite, with the program's own model of the layout */
static void test_guest_interleave(const void *opaque)
{
    uint64_t block = GPOINTER_TO_SIZE(opaque);
    g_autofree char *machine = g_strdup_printf(
        "tag-storage=on,tag-storage-block-size=%" PRIu64 ","
        "tag-storage-interleave=on", block);
    Guest g = { .block = block };
    char *out;

    guest_start_opts(&g, machine, FLAG_TAG_STORAGE | FLAG_INTERLEAVE);
    out = wait_serial(&g, "END\n");
    assert_checks(out, generic_checks);
    assert_checks(out, (const char *const[]) {
        "tag-to-data", "data-to-tag-ldg", "tb-invalidate-stgm",
        "tb-invalidate-stg", "interleave-moved", "interleave-linear-misses",
        "interleave-linear-hits", NULL });
    g_assert_nonnull(strstr(out, "RESULT pass=49 fail=0\n"));
    guest_finish(&g, out);
}

/*
 * With 8 KiB blocks (64 units of 128 bytes), the page at the middle of a
 * block (unit 32) has its tags in unit 1, bit-reversed: reading the first
 * half of the block as data is one R2, reported for that page.
 */
static void test_check_interleave(void)
{
    Guest g = { .block = 8192 };
    uint64_t b, mid, ts;
    char *out;

    guest_start_opts(&g, "tag-storage=on,tag-storage-block-size=8K,"
                     "tag-storage-interleave=on,tag-storage-check=event",
                     FLAG_TAG_STORAGE | FLAG_CHECK | FLAG_INTERLEAVE |
                     FLAG_HOST);
    b = RAM_BASE + g.ram_size / 2 + 16 * 8192 * 32;
    mid = b + 8192 * 32 / 2;
    ts = g.carveout + (b - RAM_BASE) / 32 + 1 * 128;
    host_wait(&g, 40);
    assert_violations(&g, 0, 1, 0);
    {
        Report r = { R2, mid, ts, 0, qtest_readq(g.qts, MAILBOX + 48),
                     "tag-store", 0, qtest_readq(g.qts, MAILBOX + 80) };

        assert_report(&g, &r);
    }
    host_ack(&g, 40);
    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "interleave-mid-in-first-half", "interleave-half-read", NULL });
    guest_finish(&g, out);
}

/* ---- snapshots, migration, reset ---- */

/* SHA-256 of the whole carveout, read by the host with pmemsave */
static char *carveout_sha(Guest *g)
{
    g_autofree char *path = g_build_filename(g->dir, "carveout.bin", NULL);
    g_autofree char *data = NULL;
    gsize len;

    qtest_qmp_assert_success(g->qts, "{ 'execute': 'pmemsave', 'arguments': "
                             "{ 'val': %" PRIu64 ", 'size': %" PRIu64 ", "
                             "'filename': %s } }", g->carveout,
                             g->ram_size / 32, path);
    g_assert(g_file_get_contents(path, &data, &len, NULL));
    g_assert_cmpuint(len, ==, g->ram_size / 32);
    unlink(path);
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)data,
                                       len);
}

static char *zeros_sha(uint64_t len)
{
    g_autofree guchar *zeros = g_malloc0(len);

    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, zeros, len);
}

static int count_lines(const char *out, const char *line)
{
    g_autofree char *l = g_strdup_printf("\n%s\n", line);
    int n = 0;

    for (const char *p = out; (p = strstr(p, l)); p++) {
        n++;
    }
    return n;
}

static void run_qemu_img(const char *args)
{
    const char *img = g_getenv("QTEST_QEMU_IMG");
    g_autofree char *cmd = NULL;
    g_autofree char *err = NULL;
    int status;

    g_assert(img);
    cmd = g_strdup_printf("%s %s", img, args);
    g_assert(g_spawn_command_line_sync(cmd, NULL, &err, &status, NULL));
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        g_test_message("%s: %s", cmd, err);
        g_assert_not_reached();
    }
}

/* savevm, scramble the tags, loadvm: every carveout byte comes back */
static void test_snapshot(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-snap-XXXXXX", NULL);
    g_autofree char *disk = g_build_filename(dir, "disk.qcow2", NULL);
    g_autofree char *create = g_strdup_printf("create -q -f qcow2 %s 16M",
                                              disk);
    g_autofree char *extra = g_strdup_printf("-drive if=none,id=d0,"
                                             "format=qcow2,file=%s", disk);
    g_autofree char *saved = NULL, *scrambled = NULL, *loaded = NULL;
    g_autofree char *hmp = NULL;
    Guest g = { .extra = extra };
    char *out;

    run_qemu_img(create);
    /* secure=on: the guest also tags secure RAM, in hidden tag memory */
    guest_start_opts(&g, "secure=on,tag-storage=on",
                     FLAG_TAG_STORAGE | FLAG_PERSIST | FLAG_SECURE);
    host_wait(&g, 20);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'stop' }");
    saved = carveout_sha(&g);
    hmp = qtest_hmp(g.qts, "savevm snap1");
    g_assert_cmpstr(hmp, ==, "");
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'cont' }");
    host_ack(&g, 20);

    /* the guest verified the tags, then wrote others */
    host_wait(&g, 21);
    scrambled = carveout_sha(&g);
    g_assert_cmpstr(scrambled, !=, saved);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'stop' }");
    g_free(hmp);
    hmp = qtest_hmp(g.qts, "loadvm snap1");
    g_assert_cmpstr(hmp, ==, "");
    loaded = carveout_sha(&g);
    g_assert_cmpstr(loaded, ==, saved);

    /* back in stage 20: the guest checks the tags of the snapshot */
    qtest_writeq(g.qts, MAILBOX + 56, 1);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'cont' }");
    host_ack(&g, 20);
    out = wait_serial(&g, "END\n");
    g_assert_cmpint(count_lines(out, "ok persist-tags"), ==, 2);
    g_assert_cmpint(count_lines(out, "ok persist-secure-tags"), ==, 2);
    g_assert_cmpint(count_lines(out, "ok persist-checks"), ==, 2);
    g_assert_null(strstr(out, "persist-scrambled"));
    g_assert_nonnull(strstr(out, "RESULT pass=3 fail=0\n"));
    guest_finish(&g, out);
    unlink(disk);
    rmdir(dir);
}

static void wait_migration(QTestState *qts)
{
    /* 10 minutes: a sparse 128 GiB guest takes a while to scan */
    for (int i = 0;; i++) {
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        const char *st = qdict_get_try_str(qdict_get_qdict(rsp, "return"),
                                           "status");
        bool done = st && !strcmp(st, "completed");

        g_assert(!st || strcmp(st, "failed"));
        qobject_unref(rsp);
        if (done) {
            return;
        }
        g_assert_cmpint(i, <, 600000);
        g_usleep(1000);
    }
}

/* Migration to a file and into a second QEMU */
static void test_migrate(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-mig-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "vm.mig", NULL);
    g_autofree char *incoming = g_strdup_printf("-incoming file:%s", file);
    g_autofree char *before = NULL, *after = NULL;
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    Guest src = {}, dst = { .extra = incoming };
    char *out;

    guest_start_opts(&src, "tag-storage=on", FLAG_TAG_STORAGE | FLAG_PERSIST);
    host_wait(&src, 20);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'stop' }");
    before = carveout_sha(&src);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    wait_migration(src.qts);
    qtest_quit(src.qts);

    /* The guest's memory, mailbox included, comes from the stream */
    guest_launch(&dst, "tag-storage=on");
    wait_migration(dst.qts);
    after = carveout_sha(&dst);
    g_assert_cmpstr(after, ==, before);
    qtest_writeq(dst.qts, MAILBOX + 56, 1);
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'cont' }");
    host_ack(&dst, 20);
    out = wait_serial(&dst, "END\n");
    /* the destination's console starts after the migration */
    g_assert(g_str_has_prefix(out, "ok persist-tags\nok persist-checks\n"));
    g_assert_nonnull(strstr(out, "RESULT pass=2 fail=0\n"));
    guest_finish(&dst, out);
    guest_cleanup(&src);
    unlink(file);
    rmdir(dir);
}

/*
 * The source runs the checker, the destination does not: the migration
 * fails with a message naming the option, not an opaque stream error.
 */
static void test_migrate_check_mismatch(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-mig-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "vm.mig", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *args = NULL, *err = NULL;
    Guest src = {};

    guest_start_opts(&src, "tag-storage=on,tag-storage-check=log",
                     FLAG_TAG_STORAGE | FLAG_PERSIST);
    host_wait(&src, 20);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    wait_migration(src.qts);
    qtest_quit(src.qts);
    guest_cleanup(&src);

    args = g_strdup_printf("-accel tcg -M virt,mte=on,tag-storage=on "
                           "-cpu max -m 512M -incoming %s", uri);
    g_assert_cmpint(run_qemu(args, &err), ==, 1);
    if (!strstr(err, "mte-tag-storage: the migration source runs "
                "tag-storage-check=log, this destination "
                "tag-storage-check=off")) {
        g_test_message("stderr: %s", err);
        g_assert_not_reached();
    }
    unlink(file);
    rmdir(dir);
}

/* Peak resident memory of QEMU @qts, in MiB */
static uint64_t peak_rss_mib(QTestState *qts)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status",
                                            (int)qtest_pid(qts));
    g_autofree char *status = NULL;
    const char *hwm;

    if (!g_file_get_contents(path, &status, NULL, NULL)) {
        return 0;
    }
    hwm = strstr(status, "VmHWM:");
    return hwm ? g_ascii_strtoull(hwm + strlen("VmHWM:"), NULL, 10) / 1024 : 0;
}

/* The owner runs of [@base, @base + @size), which must be one @owner run */
static void assert_owner(Guest *g, uint64_t base, uint64_t size,
                         const char *owner)
{
    QDict *rsp = qtest_qmp(g->qts, "{ 'execute': 'query-mte-tag-storage', "
                           "'arguments': { 'base': %" PRIu64 ", "
                           "'size': %" PRIu64 " } }", base, size);
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *region = qobject_to(QDict,
                               qlist_peek(qdict_get_qlist(ret, "regions")));
    QList *blocks = qdict_get_qlist(region, "blocks");
    QDict *run = qobject_to(QDict, qlist_peek(blocks));

    g_assert_cmpint(qlist_size(blocks), ==, 1);
    g_assert_cmphex(qdict_get_uint(run, "base"), ==, base);
    g_assert_cmpuint(qdict_get_uint(run, "size"), ==, size);
    g_assert_cmpstr(qdict_get_str(run, "owner"), ==, owner);
    qobject_unref(rsp);
}

/*
 * A large, sparse guest (-m 64G, 128G: a 2 or 4 GiB carveout and owner
 * map) with the checker on: the owners and counts migrate into a second
 * QEMU, are saved and loaded with savevm/loadvm there, and a reset clears
 * them.  QEMU 10.2 migration reads every page of
 * guest RAM and, doing so, makes even untouched pages resident (stock
 * QEMU: 16 GiB RSS for -m 16G), which a 24 GiB host cannot do for 64 GiB.
 * So RAM and tag storage are shared files that the destination maps too
 * (x-ignore-shared), as in a local live update, and only device state,
 * the checker's included, goes through the stream.
 */
#define IGNORE_SHARED "{ 'execute': 'migrate-set-capabilities', " \
    "'arguments': { 'capabilities': [ " \
    "{ 'capability': 'x-ignore-shared', 'state': true } ] } }"

static void test_large(const void *opaque)
{
    uint64_t gib = g_ascii_strtoull(opaque, NULL, 10);
    QList *src_writers, *dst_writers;
    g_autofree char *dir = g_dir_make_tmp("mts-large-XXXXXX", NULL);
    g_autofree char *file = g_build_filename(dir, "vm.mig", NULL);
    g_autofree char *ram = g_build_filename(dir, "ram", NULL);
    g_autofree char *ts = g_build_filename(dir, "tag-storage", NULL);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree char *backend = g_strdup_printf(
        "-object memory-backend-file,id=r,size=%" PRIu64 "G,mem-path=%s,"
        "share=on -M memory-backend=r -object memory-backend-file,id=t,"
        "size=%" PRIu64 "M,mem-path=%s,share=on", gib, ram, gib * 32, ts);
    g_autofree char *disk = g_build_filename(dir, "disk.qcow2", NULL);
    g_autofree char *create = g_strdup_printf("create -q -f qcow2 %s 16M",
                                              disk);
    g_autofree char *incoming = g_strdup_printf(
        "%s -incoming defer -drive if=none,id=d0,format=qcow2,file=%s",
        backend, disk);
    g_autofree char *hmp = NULL;
    const char *machine = "tag-storage=on,tag-storage-check=log,"
                          "tag-storage-memdev=t";
    Guest src = { .ram_mib = gib * 1024, .extra = backend };
    Guest dst = { .ram_mib = gib * 1024, .extra = incoming };
    uint64_t tags, writes, reads;
    QDict *region;
    char *out;

    run_qemu_img(create);
    guest_start_opts(&src, machine, FLAG_TAG_STORAGE | FLAG_PERSIST);
    /* the tags of persist_scenario()'s 1 MiB in the middle of 1 GiB */
    tags = src.carveout + (512 * MiB + MiB) / 32;
    host_wait(&src, 20);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'stop' }");
    assert_owner(&src, tags, MiB / 32, "tag");
    region = query_region(&src);
    writes = qdict_get_uint(region, "tag-writes");
    g_assert_cmpuint(writes, ==, MiB / 16);
    g_assert_cmpuint(qdict_get_uint(region, "carveout-size"), ==,
                     gib * GiB / 32);
    qobject_unref(region);
    /* a run per 16-byte granule: the last of the 32 STGs it holds */
    src_writers = query_writer_runs(&src, tags, 4096);
    g_assert_cmpint(qlist_size(src_writers), ==, 4096 / 16);
    assert_writer(qdict_get_qdict(qobject_to(QDict, qlist_peek(src_writers)),
                                  "tag-writer"), "tag-store", 0,
                  qdict_get_uint(qdict_get_qdict(qobject_to(QDict,
                      qlist_peek(src_writers)), "tag-writer"), "pc"));
    qtest_qmp_assert_success(src.qts, IGNORE_SHARED);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    wait_migration(src.qts);
    g_test_message("-m %" PRIu64 "G source: peak RSS %" PRIu64 " MiB", gib,
                   peak_rss_mib(src.qts));
    qtest_quit(src.qts);
    guest_cleanup(&src);

    guest_launch(&dst, machine);
    qtest_qmp_assert_success(dst.qts, IGNORE_SHARED);
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    wait_migration(dst.qts);
    assert_owner(&dst, tags, MiB / 32, "tag");
    assert_owner(&dst, tags + MiB / 32, 4096, "never-written");
    region = query_region(&dst);
    g_assert_cmpuint(qdict_get_uint(region, "tag-writes"), ==, writes);
    qobject_unref(region);
    /* the writers came along */
    dst_writers = query_writer_runs(&dst, tags, 4096);
    g_assert_true(qobject_is_equal(QOBJECT(src_writers),
                                   QOBJECT(dst_writers)));
    qobject_unref(dst_writers);
    qtest_writeq(dst.qts, MAILBOX + 56, 1);
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'cont' }");
    host_ack(&dst, 20);
    out = wait_serial(&dst, "END\n");
    g_assert(g_str_has_prefix(out, "ok persist-tags\nok persist-checks\n"));
    assert_violations(&dst, 0, 0, 0);

    /*
     * Into a snapshot (x-ignore-shared still set, so RAM and tag storage
     * themselves are not in it), then a reset, which forgets owners and
     * counts, then loadvm, which brings them back
     */
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'stop' }");
    region = query_region(&dst);
    reads = qdict_get_uint(region, "tag-reads");
    g_assert_cmpuint(reads, >, 0);
    qobject_unref(region);
    hmp = qtest_hmp(dst.qts, "savevm large");
    g_assert_cmpstr(hmp, ==, "");
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(dst.qts, "RESET");
    assert_owner(&dst, tags, MiB / 32, "never-written");
    dst_writers = query_writer_runs(&dst, tags, 4096);
    g_assert_cmpint(qlist_size(dst_writers), ==, 1);    /* no writer */
    g_assert_false(qdict_haskey(qobject_to(QDict, qlist_peek(dst_writers)),
                                "tag-writer"));
    qobject_unref(dst_writers);
    g_free(hmp);
    hmp = qtest_hmp(dst.qts, "loadvm large");
    g_assert_cmpstr(hmp, ==, "");
    region = query_region(&dst);
    g_assert_cmpuint(qdict_get_uint(region, "tag-reads"), ==, reads);
    g_assert_cmpuint(qdict_get_uint(region, "tag-writes"), ==, writes);
    qobject_unref(region);
    assert_owner(&dst, tags, MiB / 32, "tag");
    dst_writers = query_writer_runs(&dst, tags, 4096);
    g_assert_true(qobject_is_equal(QOBJECT(src_writers),
                                   QOBJECT(dst_writers)));
    qobject_unref(dst_writers);
    qobject_unref(src_writers);

    /* a reset forgets owners and counts, and clears the tags */
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(dst.qts, "RESET");
    assert_owner(&dst, tags, MiB / 32, "never-written");
    region = query_region(&dst);
    g_assert_cmpuint(qdict_get_uint(region, "tag-writes"), ==, 0);
    qobject_unref(region);
    g_assert_cmphex(qtest_readq(dst.qts, tags), ==, 0);
    g_test_message("-m %" PRIu64 "G destination: peak RSS %" PRIu64 " MiB",
                   gib, peak_rss_mib(dst.qts));
    guest_finish(&dst, out);
    unlink(file);
    unlink(ram);
    unlink(ts);
    unlink(disk);
    rmdir(dir);
}

/* Extract the RAM blocks of migration stream @file into @dir */
static void extract_stream(const char *file, const char *dir)
{
    const char *py = g_getenv("MTS_PYTHON");
    const char *script = g_getenv("MTS_ANALYZE_MIGRATION");
    const char *argv[] = { py, script, "-x", "-f", file, NULL };
    g_autoptr(GError) err = NULL;
    int status;

    g_assert(py && script);
    g_assert(g_spawn_sync(dir, (char **)argv, NULL,
                          G_SPAWN_STDOUT_TO_DEV_NULL |
                          G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                          &status, &err));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char *block_sha(const char *dir, const char *block, char **data,
                       gsize *len)
{
    g_autofree char *path = g_build_filename(dir, block, NULL);

    g_assert(g_file_get_contents(path, data, len, NULL));
    unlink(path);
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (guchar *)*data,
                                       *len);
}

/* The guest's generator (persist_fill()), to predict the tags it set */
static uint64_t xorshift64s(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

/*
 * -M secure=on: the program runs at Secure EL1 and also tags 1 MiB of
 * secure RAM, whose tags live in hidden secure tag memory that no host
 * interface reads.  Migrate to a file, load it in a second QEMU and
 * migrate that to another file: the secure tag RAM block and the
 * carveout, extracted from both streams, are the same, and the secure
 * tags are the ones the guest's generator set.
 */
static void test_migrate_secure(void)
{
    g_autofree char *dir = g_dir_make_tmp("mts-migs-XXXXXX", NULL);
    g_autofree char *file_a = g_build_filename(dir, "a.mig", NULL);
    g_autofree char *file_b = g_build_filename(dir, "b.mig", NULL);
    g_autofree char *dir_a = g_build_filename(dir, "a", NULL);
    g_autofree char *dir_b = g_build_filename(dir, "b", NULL);
    g_autofree char *uri_a = g_strdup_printf("file:%s", file_a);
    g_autofree char *uri_b = g_strdup_printf("file:%s", file_b);
    g_autofree char *incoming = g_strdup_printf("-incoming %s", uri_a);
    g_autofree char *sec_a = NULL, *sec_b = NULL, *ts_a = NULL, *ts_b = NULL;
    g_autofree char *sec = NULL, *sec2 = NULL, *ts = NULL, *ts2 = NULL;
    g_autofree char *rm = NULL;
    const uint64_t sec_offset = 0x100000 / 32;   /* tags of 0x0e100000 */
    uint64_t state = 0x5ec;
    gsize len;
    Guest src = {}, dst = { .extra = incoming };
    char *out;

    g_assert_cmpint(mkdir(dir_a, 0700), ==, 0);
    g_assert_cmpint(mkdir(dir_b, 0700), ==, 0);
    guest_start_opts(&src, "secure=on,tag-storage=on",
                     FLAG_TAG_STORAGE | FLAG_PERSIST | FLAG_SECURE);
    host_wait(&src, 20);
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(src.qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri_a);
    wait_migration(src.qts);
    qtest_quit(src.qts);

    guest_launch(&dst, "secure=on,tag-storage=on");
    wait_migration(dst.qts);
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri_b);
    wait_migration(dst.qts);

    extract_stream(file_a, dir_a);
    extract_stream(file_b, dir_b);
    sec_a = block_sha(dir_a, "mach-virt.secure-tag", &sec, &len);
    sec_b = block_sha(dir_b, "mach-virt.secure-tag", &sec2, &len);
    g_assert_cmpstr(sec_a, ==, sec_b);
    ts_a = block_sha(dir_a, "mte-tag-storage", &ts, &len);
    ts_b = block_sha(dir_b, "mte-tag-storage", &ts2, &len);
    g_assert_cmpstr(ts_a, ==, ts_b);
    g_assert_cmpuint(len, ==, src.ram_size / 32);
    for (uint64_t i = 0; i < 0x100000 / 32; i++) {
        uint8_t lo = xorshift64s(&state) & 15;
        uint8_t hi = xorshift64s(&state) & 15;

        g_assert_cmphex((uint8_t)sec[sec_offset + i], ==, lo | hi << 4);
    }

    /* and the guest, resumed, reads them back */
    qtest_writeq(dst.qts, MAILBOX + 56, 1);
    qtest_qmp_assert_success(dst.qts, "{ 'execute': 'cont' }");
    host_ack(&dst, 20);
    out = wait_serial(&dst, "END\n");
    g_assert(g_str_has_prefix(out, "ok persist-tags\n"
                              "ok persist-secure-tags\n"
                              "ok persist-checks\n"));
    g_assert_nonnull(strstr(out, "RESULT pass=3 fail=0\n"));
    guest_finish(&dst, out);
    guest_cleanup(&src);
    unlink(file_a);
    unlink(file_b);
    rm = g_strdup_printf("rm -rf %s", dir);
    g_assert_cmpint(system(rm), ==, 0);
}

/* system_reset clears the carveout, and code translated from it */
static void test_reset(const void *opaque)
{
    g_autofree char *before = NULL, *after = NULL, *zeros = NULL;
    Guest g = {};
    char *out;

    /* with the checker, only pages whose owners were written are read */
    guest_start_opts(&g, opaque, FLAG_TAG_STORAGE | FLAG_RESET);
    host_wait(&g, 30);
    zeros = zeros_sha(g.ram_size / 32);
    before = carveout_sha(&g);
    g_assert_cmpstr(before, !=, zeros);
    qtest_writeq(g.qts, MAILBOX + 56, 1);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(g.qts, "RESET");
    after = carveout_sha(&g);
    g_assert_cmpstr(after, ==, zeros);
    qtest_qmp_assert_success(g.qts, "{ 'execute': 'cont' }");
    out = wait_serial(&g, "END\n");
    assert_checks(out, (const char *const[]) {
        "reset-before-exec", "reset-tags-zero", "reset-code-bytes-zero",
        "reset-no-stale-code", NULL });
    g_assert_nonnull(strstr(out, "RESULT pass=3 fail=0\n"));
    guest_finish(&g, out);
}

/*
 * Tests that run the bare-metal guest program skip without it: meson
 * leaves MTS_GUEST_ELF unset when it found no aarch64 cross compiler.
 */
static void skip_no_guest(void)
{
    g_test_skip("no guest program: install an aarch64 cross compiler "
                "(gcc-aarch64-linux-gnu) and reconfigure");
}

static void skip_no_guest_data(const void *data)
{
    skip_no_guest();
}

static void add_guest_func(const char *path, GTestFunc fn)
{
    qtest_add_func(path, g_getenv("MTS_GUEST_ELF") ? fn : skip_no_guest);
}

static void add_guest_data_func(const char *path, const void *data,
                                GTestDataFunc fn)
{
    qtest_add_data_func(path, data, g_getenv("MTS_GUEST_ELF") ?
                        fn : skip_no_guest_data);
}

int main(int argc, char **argv)
{
    static const DTCase dt_cases[] = {
        { "v1", 4096 }, { "v2", 4096 }, { "v3", 4096 },
        { "v1", 8192 }, { "v2", 8192 }, { "v3", 8192 },
        { "v3", 65536 },
    };
    static const FaultStopCase fault_stop_cases[] = {
        { "tag-storage=on,tag-storage-check=log,tag-storage-init=random,"
          "tag-storage-init-seed=1234", false },
        { "tag-storage=on,tag-storage-check=event", true },
    };

    g_test_init(&argc, &argv, NULL);

    for (int i = 0; i < ARRAY_SIZE(dt_cases); i++) {
        g_autofree char *name = g_strdup_printf("mte-tag-storage/dt/%s-%u",
                                                dt_cases[i].binding,
                                                dt_cases[i].block_size);
        qtest_add_data_func(name, &dt_cases[i], test_dt);
    }
    qtest_add_func("mte-tag-storage/dt/default", test_dt_default);
    qtest_add_data_func("mte-tag-storage/dt/numa-v1", "v1", test_dt_numa);
    qtest_add_data_func("mte-tag-storage/dt/numa-v2", "v2", test_dt_numa);
    qtest_add_data_func("mte-tag-storage/dt/numa-v3", "v3", test_dt_numa);
    qtest_add_func("mte-tag-storage/dt/off", test_dt_off);
    qtest_add_func("mte-tag-storage/dt/user-dtb", test_dt_user_dtb);
    for (int i = 0; i < ARRAY_SIZE(err_cases); i++) {
        g_autofree char *name = g_strdup_printf("mte-tag-storage/error/%d", i);
        qtest_add_data_func(name, &err_cases[i], test_error);
    }
    add_guest_func("mte-tag-storage/guest/tag-storage-off", test_guest_off);
    add_guest_func("mte-tag-storage/guest/tag-storage-on", test_guest_on);
    add_guest_func("mte-tag-storage/guest/memdev", test_memdev);
    add_guest_data_func("mte-tag-storage/guest/interleave-8k",
                        GSIZE_TO_POINTER(8192), test_guest_interleave);
    add_guest_data_func("mte-tag-storage/guest/interleave-64k",
                        GSIZE_TO_POINTER(65536), test_guest_interleave);
    add_guest_data_func("mte-tag-storage/check/log", "log", test_check);
    add_guest_data_func("mte-tag-storage/check/event", "event", test_check);
    add_guest_data_func("mte-tag-storage/check/stop", "stop", test_check);
    add_guest_func("mte-tag-storage/check/off", test_check_off);
    add_guest_func("mte-tag-storage/check/dc-zva", test_check_dc_zva);
    add_guest_func("mte-tag-storage/check/absent", test_check_absent);
    add_guest_data_func("mte-tag-storage/check/dma-bounce-log", "log",
                        test_check_dma_bounce);
    add_guest_data_func("mte-tag-storage/check/dma-bounce-off", "off",
                        test_check_dma_bounce);
    add_guest_func("mte-tag-storage/check/interleave", test_check_interleave);
    add_guest_data_func("mte-tag-storage/check/r4-random", "random", test_r4);
    add_guest_data_func("mte-tag-storage/check/r4-zero", "zero", test_r4);
    add_guest_func("mte-tag-storage/check/init-random", test_init_random);
    add_guest_data_func("mte-tag-storage/check/fault-stop-unwritten-random",
                        &fault_stop_cases[0], test_fault_stop_check);
    add_guest_data_func("mte-tag-storage/check/fault-stop-data-owned",
                        &fault_stop_cases[1], test_fault_stop_check);
    add_guest_func("mte-tag-storage/check/smp-culprit", test_smp);
    qtest_add_func("mte-tag-storage/check/writers-query", test_writers_query);
    add_guest_func("mte-tag-storage/check/icount", test_check_icount);
    qtest_add_func("mte-tag-storage/check/blocks-query-pages",
                   test_blocks_query_pages);
    add_guest_data_func("mte-tag-storage/check/fault-stop-qmp",
                        GSIZE_TO_POINTER(0), test_fault_stop_qmp);
    add_guest_data_func("mte-tag-storage/check/fault-stop-qmp-interleave",
                        GSIZE_TO_POINTER(65536), test_fault_stop_qmp);
    qtest_add_func("mte-tag-storage/error/fault-stop-no-mte",
                   test_fault_stop_no_mte);
    add_guest_func("mte-tag-storage/persist/snapshot", test_snapshot);
    add_guest_func("mte-tag-storage/persist/migrate", test_migrate);
    add_guest_func("mte-tag-storage/persist/migrate-secure",
                   test_migrate_secure);
    add_guest_data_func("mte-tag-storage/persist/reset", "tag-storage=on",
                        test_reset);
    add_guest_data_func("mte-tag-storage/persist/reset-check",
                        "tag-storage=on,tag-storage-check=log", test_reset);
    add_guest_func("mte-tag-storage/persist/migrate-check-mismatch",
                   test_migrate_check_mismatch);
    add_guest_data_func("mte-tag-storage/large/64G", "64", test_large);
    add_guest_data_func("mte-tag-storage/large/128G", "128", test_large);
    add_guest_data_func("mte-tag-storage/random/tag-storage-on",
                        GINT_TO_POINTER(1), test_random);
    add_guest_data_func("mte-tag-storage/random/tag-storage-off",
                        GINT_TO_POINTER(0), test_random);
    add_guest_data_func("mte-tag-storage/random/interleave",
                        GINT_TO_POINTER(2), test_random);

    return g_test_run();
}
