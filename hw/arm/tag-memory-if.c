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

void arm_tag_memory_map_init(ARMTagMemoryMap *map, Object *owner)
{
    *map = (ARMTagMemoryMap) {
        .owner = ARM_TAG_MEMORY_IF(owner),
        .hooks = ARM_TAG_MEMORY_IF_GET_CLASS(owner),
    };
}

const ARMTagMemoryMap *
arm_tag_memory_find_map(MemoryRegion *tag_memory,
                        const ARMTagMemoryCPUOps *cpu_ops)
{
    Object *owner = memory_region_owner(tag_memory);
    ARMTagMemoryMap *map;
    ARMTagMemoryIfClass *k;

    assert(!phase_check(PHASE_MACHINE_READY));
    if (!object_dynamic_cast(owner, TYPE_ARM_TAG_MEMORY_IF)) {
        return NULL;
    }
    k = ARM_TAG_MEMORY_IF_GET_CLASS(owner);
    map = k->get_map ? k->get_map(ARM_TAG_MEMORY_IF(owner)) : NULL;
    if (map) {
        /* its hooks, for arm_tag_memory_tag_access() and the others */
        assert(map->hooks);
        /* all the CPUs sharing a map are of one kind */
        assert(!map->cpu_ops || map->cpu_ops == cpu_ops);
        map->cpu_ops = cpu_ops;
    }
    return map;
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
