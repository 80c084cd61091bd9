/*
 * MTE tag storage hook, for binaries without a board that has tag storage.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/misc/mte-tag-storage.h"

bool mte_tag_storage_untagged_access(MemoryRegion *mr, hwaddr paddr)
{
    return false;
}

bool mte_tag_storage_guest_paddr(MemoryRegion *mr, hwaddr offset,
                                 hwaddr *paddr)
{
    return false;
}
