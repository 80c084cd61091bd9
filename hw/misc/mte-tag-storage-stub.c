/*
 * MTE tag storage hook, for binaries without a board that has tag storage.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-misc-arm.h"
#include "hw/misc/mte-tag-storage.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"

bool mte_tag_storage_untagged_access(MemoryRegion *mr, hwaddr paddr)
{
    return false;
}

bool mte_tag_storage_guest_paddr(MemoryRegion *mr, hwaddr offset,
                                 hwaddr *paddr)
{
    return false;
}

bool mte_tag_storage_checking;
MTETagStorageDirect mte_tag_storage_direct[MTE_TAG_STORAGE_MAX_DIRECT];
unsigned mte_tag_storage_ndirect;

void mte_tag_storage_add_direct(hwaddr tagged_base, hwaddr tagged_size,
                                MemoryRegion *tags, hwaddr tags_offset,
                                unsigned interleave_bits, bool hidden)
{
}

void mte_tag_storage_tag_access(CPUState *cs, MemoryRegion *mr,
                                hwaddr offset, unsigned len, bool write,
                                hwaddr paddr, uintptr_t ra)
{
}

bool mte_tag_storage_tagged_carveout(CPUState *cs, hwaddr paddr,
                                     uintptr_t ra)
{
    return false;
}

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
