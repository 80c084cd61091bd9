/*
 * Interface of the object that owns an Arm CPU's allocation tag memory
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/arm/tag-memory-if.h"
#include "hw/qdev-core.h"
#include "system/memory.h"

void arm_tag_memory_map_add(ARMTagMemoryMap *map, const ARMTagMemoryDirect *d)
{
    assert(!phase_check(PHASE_MACHINE_READY));
    map->entries = g_renew(ARMTagMemoryDirect, map->entries, map->count + 1);
    map->entries[map->count++] = *d;
}

ARMTagMemoryIf *arm_tag_memory_if_find(MemoryRegion *tag_memory)
{
    Object *owner = memory_region_owner(tag_memory);

    return (ARMTagMemoryIf *)object_dynamic_cast(owner,
                                                 TYPE_ARM_TAG_MEMORY_IF);
}

const ARMTagMemoryMap *arm_tag_memory_get_map(ARMTagMemoryIf *tm)
{
    ARMTagMemoryIfClass *k = tm ? ARM_TAG_MEMORY_IF_GET_CLASS(tm) : NULL;

    return k && k->get_map ? k->get_map(tm) : NULL;
}

bool arm_tag_memory_untagged_access(ARMTagMemoryIf *tm, MemoryRegion *mr,
                                    hwaddr paddr)
{
    ARMTagMemoryIfClass *k = tm ? ARM_TAG_MEMORY_IF_GET_CLASS(tm) : NULL;

    return k && k->untagged_access && k->untagged_access(tm, mr, paddr);
}

bool arm_tag_memory_tagged_io_access(ARMTagMemoryIf *tm, CPUState *cs,
                                     hwaddr paddr, uintptr_t ra)
{
    ARMTagMemoryIfClass *k = tm ? ARM_TAG_MEMORY_IF_GET_CLASS(tm) : NULL;

    return k && k->tagged_io_access && k->tagged_io_access(tm, cs, paddr, ra);
}

void arm_tag_memory_tag_access(ARMTagMemoryIf *tm, CPUState *cs,
                               MemoryRegion *mr, hwaddr offset, unsigned len,
                               bool write, hwaddr paddr, uintptr_t ra)
{
    ARMTagMemoryIfClass *k = tm ? ARM_TAG_MEMORY_IF_GET_CLASS(tm) : NULL;

    if (k && k->tag_access) {
        k->tag_access(tm, cs, mr, offset, len, write, paddr, ra);
    }
}

bool arm_tag_memory_tag_guest_paddr(ARMTagMemoryIf *tm, MemoryRegion *mr,
                                    hwaddr offset, hwaddr *paddr)
{
    ARMTagMemoryIfClass *k = tm ? ARM_TAG_MEMORY_IF_GET_CLASS(tm) : NULL;

    return k && k->tag_guest_paddr && k->tag_guest_paddr(tm, mr, offset,
                                                         paddr);
}

static const TypeInfo arm_tag_memory_if_info = {
    .name = TYPE_ARM_TAG_MEMORY_IF,
    .parent = TYPE_INTERFACE,
    .class_size = sizeof(ARMTagMemoryIfClass),
};

static void arm_tag_memory_if_register_types(void)
{
    type_register_static(&arm_tag_memory_if_info);
}

type_init(arm_tag_memory_if_register_types)
