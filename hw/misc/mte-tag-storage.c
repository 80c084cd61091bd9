/*
 * MTE tag storage carveout: guest-visible RAM that holds the allocation
 * tags of tagged RAM, as on hardware that lets the OS reuse tag storage.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * See docs/system/arm/mte-tag-storage.rst for what is emulated and why,
 * and include/hw/misc/mte-tag-storage.h for the contract with the board
 * and with the TCG MTE helpers.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/atomic.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/target_page.h"
#include "hw/qdev-properties.h"
#include "hw/misc/mte-tag-storage.h"
#include "system/device_tree.h"
#include "trace.h"

#include <libfdt.h>

/*
 * The Linux RFC hands tag storage to CMA, which works in 2 MiB pageblocks
 * (4K pages): tagged RAM must come in multiples of 32 * 2 MiB.
 */
#define MTE_TAG_STORAGE_SIZE_ALIGN  (64 * MiB)
#define MTE_TAG_STORAGE_MIN_BLOCK   (4 * KiB)

bool mte_tag_storage_check_block_size(uint64_t block_size, Error **errp)
{
    if (block_size < MTE_TAG_STORAGE_MIN_BLOCK ||
        block_size % MTE_TAG_STORAGE_MIN_BLOCK || !is_power_of_2(block_size) ||
        block_size > UINT32_MAX) {
        error_setg(errp, "tag-storage-block-size=%" PRIu64 " must be a power "
                   "of two, a multiple of 4096 and below 4 GiB", block_size);
        return false;
    }
    return true;
}

bool mte_tag_storage_check_geometry(uint64_t tagged_size, uint64_t block_size,
                                    Error **errp)
{
    uint64_t carveout_size = mte_tag_storage_carveout_size(tagged_size);

    if (tagged_size == 0 || tagged_size % MTE_TAG_STORAGE_SIZE_ALIGN) {
        error_setg(errp, "tag-storage=on needs -m to be a multiple of 64 MiB "
                   "(its 1/32 carveout must be 2 MiB aligned), not %" PRIu64
                   " KiB", tagged_size / KiB);
        return false;
    }
    if (!mte_tag_storage_check_block_size(block_size, errp)) {
        return false;
    }
    if (carveout_size % block_size) {
        error_setg(errp, "tag-storage-block-size=%" PRIu64 " does not divide "
                   "the carveout size 0x%" PRIx64, block_size, carveout_size);
        return false;
    }
    return true;
}

bool mte_tag_storage_parse_binding(const char *str, MTETagStorageBinding *b,
                                   Error **errp)
{
    if (!strcmp(str, "v1")) {
        *b = MTE_TAG_STORAGE_BINDING_V1;
    } else if (!strcmp(str, "v2")) {
        *b = MTE_TAG_STORAGE_BINDING_V2;
    } else if (!strcmp(str, "v3")) {
        *b = MTE_TAG_STORAGE_BINDING_V3;
    } else {
        error_setg(errp, "tag-storage-binding=%s is not a known device tree "
                   "binding (expected v1, v2 or v3)", str);
        return false;
    }
    return true;
}

/*
 * The tag address space holds this region where the tags of the carveout
 * would be.  It is deliberately not RAM, so the MTE helpers never read or
 * write through it; these callbacks only serve other users of the space.
 */
static uint64_t self_tags_read(void *opaque, hwaddr addr, unsigned size)
{
    return 0;
}

static void self_tags_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
}

static const MemoryRegionOps self_tags_ops = {
    .read = self_tags_read,
    .write = self_tags_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
};

bool mte_tag_storage_untagged_access(MemoryRegion *mr, hwaddr paddr)
{
    MTETagStorageState *s;
    uint64_t page, bit, old;
    unsigned long *word;

    s = (MTETagStorageState *)object_dynamic_cast(mr->owner,
                                                  TYPE_MTE_TAG_STORAGE);
    if (!s || mr != &s->self_tags) {
        return false;
    }

    trace_mte_tag_storage_self_tagged(paddr);
    page = (paddr - s->carveout_base) >> qemu_target_page_bits();
    word = &s->self_tag_reported[BIT_WORD(page)];
    bit = BIT_MASK(page);
    old = qatomic_fetch_or(word, bit);
    if (!(old & bit)) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "mte-tag-storage: Tagged access to tag storage at 0x%"
                      HWADDR_PRIx ": tag storage cannot be tagged, access is "
                      "untagged (reported once per page)\n", paddr);
    }
    return true;
}

bool mte_tag_storage_guest_paddr(MemoryRegion *mr, hwaddr offset,
                                 hwaddr *paddr)
{
    MTETagStorageState *s;

    s = (MTETagStorageState *)object_dynamic_cast(mr->owner,
                                                  TYPE_MTE_TAG_STORAGE);
    if (!s || mr != &s->carveout) {
        return false;
    }
    *paddr = s->carveout_base + offset;
    return true;
}

void mte_tag_storage_map_tags(MTETagStorageState *s, MemoryRegion *tag_sysmem)
{
    memory_region_add_subregion(tag_sysmem,
                                s->tagged_base / MTE_TAG_STORAGE_RATIO,
                                &s->tag_alias);
    memory_region_add_subregion(tag_sysmem,
                                s->carveout_base / MTE_TAG_STORAGE_RATIO,
                                &s->self_tags);
}

static void fdt_setprop_reg(void *fdt, const char *node, uint32_t acells,
                            uint32_t scells, uint64_t base, uint64_t size)
{
    qemu_fdt_setprop_sized_cells(fdt, node, "reg", acells, base,
                                 scells, size);
}

void mte_tag_storage_fdt_populate(MTETagStorageState *s, void *fdt)
{
    uint64_t size = memory_region_size(&s->carveout);
    uint32_t acells, scells, phandle;
    g_autofree char *memnode = NULL;
    g_autofree char *node = NULL;
    const char *rsv = "/reserved-memory";

    acells = qemu_fdt_getprop_cell(fdt, "/", "#address-cells", NULL,
                                   &error_fatal);
    scells = qemu_fdt_getprop_cell(fdt, "/", "#size-cells", NULL,
                                   &error_fatal);

    /* arm_load_dtb() names the RAM node after its base address */
    memnode = g_strdup_printf("/memory@%" PRIx64, s->tagged_base);
    phandle = fdt_get_phandle(fdt, fdt_path_offset(fdt, memnode));
    if (!phandle) {
        phandle = qemu_fdt_alloc_phandle(fdt);
        qemu_fdt_setprop_cell(fdt, memnode, "phandle", phandle);
    }

    switch (s->binding) {
    case MTE_TAG_STORAGE_BINDING_V1:
    case MTE_TAG_STORAGE_BINDING_V2:
        /* Root node; the carveout is in no memory node (RFC v1 and v2) */
        node = g_strdup_printf("/%s@%" PRIx64,
                               s->binding == MTE_TAG_STORAGE_BINDING_V1 ?
                               "metadata" : "tag-storage", s->carveout_base);
        qemu_fdt_add_subnode(fdt, node);
        qemu_fdt_setprop_string(fdt, node, "compatible", "arm,mte-tag-storage");
        fdt_setprop_reg(fdt, node, acells, scells, s->carveout_base, size);
        qemu_fdt_setprop_cell(fdt, node, "block-size", s->block_size);
        qemu_fdt_setprop_cell(fdt, node, "memory", phandle);
        break;
    case MTE_TAG_STORAGE_BINDING_V3:
        /* The carveout is memory, and reusable reserved memory */
        node = g_strdup_printf("/memory@%" PRIx64, s->carveout_base);
        qemu_fdt_add_subnode(fdt, node);
        qemu_fdt_setprop_string(fdt, node, "device_type", "memory");
        fdt_setprop_reg(fdt, node, acells, scells, s->carveout_base, size);
        g_free(node);

        if (fdt_path_offset(fdt, rsv) < 0) {
            qemu_fdt_add_subnode(fdt, rsv);
            qemu_fdt_setprop_cell(fdt, rsv, "#address-cells", acells);
            qemu_fdt_setprop_cell(fdt, rsv, "#size-cells", scells);
            qemu_fdt_setprop(fdt, rsv, "ranges", NULL, 0);
        } else {
            acells = qemu_fdt_getprop_cell(fdt, rsv, "#address-cells", NULL,
                                           &error_fatal);
            scells = qemu_fdt_getprop_cell(fdt, rsv, "#size-cells", NULL,
                                           &error_fatal);
        }
        node = g_strdup_printf("%s/tag-storage@%" PRIx64, rsv,
                               s->carveout_base);
        qemu_fdt_add_subnode(fdt, node);
        qemu_fdt_setprop_string(fdt, node, "compatible", "arm,mte-tag-storage");
        fdt_setprop_reg(fdt, node, acells, scells, s->carveout_base, size);
        qemu_fdt_setprop_cell(fdt, node, "block-size", s->block_size);
        qemu_fdt_setprop_cell(fdt, node, "tagged-memory", phandle);
        qemu_fdt_setprop(fdt, node, "reusable", NULL, 0);
        break;
    default:
        g_assert_not_reached();
    }
}

static void mte_tag_storage_realize(DeviceState *dev, Error **errp)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(dev);
    uint64_t size = mte_tag_storage_carveout_size(s->tagged_size);

    if (!mte_tag_storage_check_geometry(s->tagged_size, s->block_size, errp)) {
        return;
    }
    if (s->binding < MTE_TAG_STORAGE_BINDING_V1 ||
        s->binding > MTE_TAG_STORAGE_BINDING_V3) {
        error_setg(errp, "binding must be 1, 2 or 3");
        return;
    }
    if (s->tagged_base % MTE_TAG_STORAGE_RATIO ||
        s->carveout_base % (2 * MiB)) {
        error_setg(errp, "tagged-base must be 32-byte and carveout-base "
                   "2 MiB aligned");
        return;
    }

    /* Ordinary RAM: migrated, executable, reachable by DMA */
    if (!memory_region_init_ram(&s->carveout, OBJECT(s), "mte-tag-storage",
                                size, errp)) {
        return;
    }
    sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->carveout);

    memory_region_init_alias(&s->tag_alias, OBJECT(s), "mte-tag-storage.tags",
                             &s->carveout, 0, size);
    memory_region_init_io(&s->self_tags, OBJECT(s), &self_tags_ops, s,
                          "mte-tag-storage.self-tags",
                          size / MTE_TAG_STORAGE_RATIO);
    s->self_tag_reported = bitmap_new(size >> qemu_target_page_bits());

    trace_mte_tag_storage_realize(s->tagged_base, s->tagged_size,
                                  s->carveout_base, size, s->block_size,
                                  s->binding);
}

static void mte_tag_storage_finalize(Object *obj)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(obj);

    g_free(s->self_tag_reported);
}

static const Property mte_tag_storage_properties[] = {
    DEFINE_PROP_UINT64("tagged-base", MTETagStorageState, tagged_base, 0),
    DEFINE_PROP_UINT64("tagged-size", MTETagStorageState, tagged_size, 0),
    DEFINE_PROP_UINT64("carveout-base", MTETagStorageState, carveout_base, 0),
    DEFINE_PROP_UINT32("block-size", MTETagStorageState, block_size, 4096),
    DEFINE_PROP_UINT8("binding", MTETagStorageState, binding,
                      MTE_TAG_STORAGE_BINDING_V3),
};

static void mte_tag_storage_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    dc->desc = "MTE tag storage carveout";
    dc->realize = mte_tag_storage_realize;
    /* Created by boards that know where tag storage goes */
    dc->user_creatable = false;
    device_class_set_props(dc, mte_tag_storage_properties);
}

static const TypeInfo mte_tag_storage_types[] = {
    {
        .name = TYPE_MTE_TAG_STORAGE,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(MTETagStorageState),
        .instance_finalize = mte_tag_storage_finalize,
        .class_init = mte_tag_storage_class_init,
    },
};

DEFINE_TYPES(mte_tag_storage_types)
