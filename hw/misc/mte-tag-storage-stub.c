/*
 * MTE tag storage monitor commands, for binaries without tag storage.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-misc-arm.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

MTETagStorageInfo *qmp_query_mte_tag_storage(bool has_base, uint64_t base,
                                             bool has_size, uint64_t size,
                                             bool has_writers, bool writers,
                                             Error **errp)
{
    error_setg(errp, "this QEMU has no MTE tag storage");
    return NULL;
}

void hmp_info_mte_tag_storage(Monitor *mon, const QDict *qdict)
{
    monitor_printf(mon, "this QEMU has no MTE tag storage\n");
}
