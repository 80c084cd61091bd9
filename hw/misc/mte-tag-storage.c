/*
 * MTE tag storage carveout: the device, its geometry, layout and
 * device tree, initial contents and reset.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * See include/hw/misc/mte-tag-storage.h for the contract with boards and
 * the MTE helpers, and mte-tag-storage-internal.h for how the files of
 * the device share its state.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "exec/target_page.h"
#include "hw/qdev-properties.h"
#include "hw/core/qdev-prop-internal.h"
#include "migration/vmstate.h"
#include "system/address-spaces.h"
#include "system/device_tree.h"
#include "system/hostmem.h"
#include "system/runstate.h"
#include "mte-tag-storage-internal.h"
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

void mte_tag_storage_log_self_tagged(MTETagStorageState *s, hwaddr paddr)
{
    uint64_t page, bit, old;
    unsigned long *word;

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
}

bool mte_tag_storage_untagged_access(MTETagStorageState *s, MemoryRegion *mr,
                                     hwaddr paddr)
{
    if (mr != &s->self_tags) {
        return false;
    }
    mte_tag_storage_log_self_tagged(s, paddr);
    return true;
}

void mte_tag_storage_direct(MTETagStorageState *s, ARMTagMemoryDirect *d)
{
    *d = (ARMTagMemoryDirect) {
        .tagged_base = s->tagged_base,
        .tagged_size = s->tagged_size,
        .tags = s->ram,
        .tags_offset = s->ram_offset,
        .interleave_bits = s->interleave_bits,
        .tags_paddr = s->carveout_base,
    };
}

void mte_tag_storage_set_map(MTETagStorageState *s,
                             const ARMTagMemoryMap *map)
{
    s->map = map;
}

/*
 * The tag storage devices, for the monitor's commands; nothing on the
 * CPUs' paths uses this list (they go through the board).
 */
MTETagStorageList mte_tag_storages = QTAILQ_HEAD_INITIALIZER(mte_tag_storages);

bool mte_tag_storage_guest_paddr(MTETagStorageState *s, MemoryRegion *mr,
                                 hwaddr offset, hwaddr *paddr)
{
    if (!mte_tag_storage_owns(s, mr, &offset)) {
        return false;
    }
    *paddr = s->carveout_base + offset;
    return true;
}

void mte_tag_storage_map_tags(MTETagStorageState *s, MemoryRegion *tag_sysmem)
{
    if (!s->interleave) {
        memory_region_add_subregion(tag_sysmem,
                                    s->tagged_base / MTE_TAG_STORAGE_RATIO,
                                    &s->tag_alias);
    }
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
        if (s->node >= 0) {
            qemu_fdt_setprop_cell(fdt, node, "numa-node-id", s->node);
        }
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
        if (s->node >= 0) {
            qemu_fdt_setprop_cell(fdt, node, "numa-node-id", s->node);
        }
        break;
    default:
        g_assert_not_reached();
    }
}

/* Realize, 1: the properties make a carveout we can model */
static bool check_properties(MTETagStorageState *s, Error **errp)
{
    if (!mte_tag_storage_check_geometry(s->tagged_size, s->block_size, errp)) {
        return false;
    }
    if (s->interleave && s->block_size < 2 * MTE_TAG_STORAGE_MIN_BLOCK) {
        error_setg(errp, "interleave needs a block size of 8 KiB or more");
        return false;
    }
    if (s->init != MTE_TAG_STORAGE_INIT_RANDOM && s->init_seed) {
        error_setg(errp, "init-seed needs init=random");
        return false;
    }
    if (s->tagged_base % MTE_TAG_STORAGE_RATIO ||
        s->carveout_base % (2 * MiB)) {
        error_setg(errp, "tagged-base must be 32-byte and carveout-base "
                   "2 MiB aligned");
        return false;
    }
    return true;
}

/* Realize, 2: the RAM of the carveout, our own or the user's backend */
static bool init_carveout(MTETagStorageState *s, uint64_t size, Error **errp)
{
    if (s->memdev) {
        /* The user's memory backend, which the board made migratable */
        s->ram = host_memory_backend_get_memory(s->memdev);
        s->ram_offset = s->memdev_offset;
        if (s->ram_offset + size < s->ram_offset ||
            s->ram_offset + size > memory_region_size(s->ram)) {
            error_setg(errp, "memdev is too small for a carveout of 0x%"
                       PRIx64 " bytes at offset 0x%" PRIx64, size,
                       s->ram_offset);
            return false;
        }
        memory_region_init_alias(&s->carveout, OBJECT(s), "mte-tag-storage",
                                 s->ram, s->ram_offset, size);
    } else {
        /* Ordinary RAM: migrated, executable, reachable by DMA */
        g_autofree char *name = s->node >= 0 ?
            g_strdup_printf("mte-tag-storage.node%d", s->node) :
            g_strdup("mte-tag-storage");

        if (!memory_region_init_ram(&s->carveout, OBJECT(s), name, size,
                                    errp)) {
            return false;
        }
        s->ram = &s->carveout;
        s->ram_offset = 0;
    }
    return true;
}

/*
 * Realize, 3: the regions the board maps: the carveout for data accesses
 * (sysbus MMIO 0: the RAM itself, or the checker's view of it), and for
 * the tag address space, the carveout as tags and the non-RAM stand-in
 * for the tags of the carveout itself
 */
static void init_views(MTETagStorageState *s, uint64_t size)
{
    if (s->check == MTE_TAG_STORAGE_CHECK_OFF) {
        sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->carveout);
    }
    memory_region_init_alias(&s->tag_alias, OBJECT(s), "mte-tag-storage.tags",
                             &s->carveout, 0, size);
    memory_region_init_io(&s->self_tags, OBJECT(s), &self_tags_ops, s,
                          "mte-tag-storage.self-tags",
                          size / MTE_TAG_STORAGE_RATIO);
    s->self_tag_reported = bitmap_new(size >> qemu_target_page_bits());
}

static void mte_tag_storage_realize(DeviceState *dev, Error **errp)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(dev);
    uint64_t size = mte_tag_storage_carveout_size(s->tagged_size);

    if (!check_properties(s, errp) || !init_carveout(s, size, errp)) {
        return;
    }
    if (s->interleave) {
        s->interleave_bits = ctz32(s->block_size) - ARM_TAG_MEMORY_UNIT_BITS;
    }
    /* The checker maps its view of the carveout as sysbus MMIO 0 */
    if (s->check != MTE_TAG_STORAGE_CHECK_OFF &&
        !mte_tag_storage_check_realize(s, size, errp)) {
        return;
    }
    init_views(s, size);
    QTAILQ_INSERT_TAIL(&mte_tag_storages, s, next);

    trace_mte_tag_storage_realize(s->tagged_base, s->tagged_size,
                                  s->carveout_base, size, s->block_size,
                                  s->binding + 1);
}

/*
 * The init=random contents: splitmix64 of the seed and the guest physical
 * address of each 8 bytes, so that they depend on nothing else (not on
 * how many carveouts there are or the host) and differ between carveouts.
 */
static uint64_t random_word(uint64_t seed, hwaddr paddr)
{
    uint64_t z = seed + (paddr / 8 + 1) * 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define RANDOM_FILL_CHUNK   (64 * KiB)

/*
 * Fill the carveout with its init=random contents.  Directly in its RAM
 * when no code can have been translated from it (before the machine ran,
 * or while checked_ops, which are never executed from, map it); else
 * through the system address space, which drops such code.
 */
static void random_fill(MTETagStorageState *s)
{
    uint8_t *host = memory_region_get_ram_ptr(&s->carveout);
    uint64_t size = memory_region_size(&s->carveout);
    g_autofree uint8_t *buf = NULL;

    if (!s->ran || s->chk.owner) {
        for (uint64_t off = 0; off < size; off += 8) {
            stq_le_p(host + off, random_word(s->init_seed,
                                             s->carveout_base + off));
        }
        memory_region_set_dirty(s->ram, s->ram_offset, size);
        return;
    }
    buf = g_malloc(RANDOM_FILL_CHUNK);
    for (uint64_t off = 0; off < size; off += RANDOM_FILL_CHUNK) {
        uint64_t len = MIN(RANDOM_FILL_CHUNK, size - off);

        for (uint64_t i = 0; i < len; i += 8) {
            stq_le_p(buf + i, random_word(s->init_seed,
                                          s->carveout_base + off + i));
        }
        address_space_write(&address_space_memory, s->carveout_base + off,
                            MEMTXATTRS_UNSPECIFIED, buf, len);
    }
}

/* Clear the carveout, writing only pages that hold non-zero bytes */
static void zero_fill(MTETagStorageState *s)
{
    uint8_t *host = memory_region_get_ram_ptr(&s->carveout);
    uint64_t size = memory_region_size(&s->carveout);
    uint64_t page = qemu_target_page_size(), off;

    for (off = 0; off < size; off += page) {
        /*
         * With the checker on, every write to the carveout marks its owner
         * map, so only marked pages can hold non-zero bytes; reading the
         * others would make them resident for nothing.
         */
        if ((s->chk.owner_covers_ram &&
             !test_bit(off >> OWNER_CHUNK_BITS, s->chk.owner_written)) ||
            buffer_is_zero(host + off, page)) {
            continue;
        }
        if (s->chk.owner) {
            /* Through checked_ops, code from here is never cached */
            memset(host + off, 0, page);
            memory_region_set_dirty(s->ram, s->ram_offset + off, page);
        } else {
            address_space_set(&address_space_memory, s->carveout_base + off,
                              0, page, MEMTXATTRS_UNSPECIFIED);
        }
    }
}

/*
 * Allocation tags are UNKNOWN after a reset on hardware.  With init=zero,
 * clear them, so that a reset machine starts as a new one: all tags 0.
 * The first reset creates the machine and finds a new carveout; later ones
 * write only pages holding non-zero bytes, through the system address
 * space, which drops any code translated from them.  With init=random,
 * fill them with the same garbage at every reset.  Either way: no owners,
 * no writers, no counts.
 */
static void mte_tag_storage_reset_hold(Object *obj, ResetType type)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(obj);
    uint64_t size = memory_region_size(&s->carveout);
    bool random = s->init == MTE_TAG_STORAGE_INIT_RANDOM;

    if (random && !runstate_check(RUN_STATE_INMIGRATE)) {
        /* An incoming migration brings the contents instead */
        random_fill(s);
    } else if (!random && s->ran) {
        zero_fill(s);
    }
    if (!s->ran) {
        /* The reset that creates the machine: nothing was checked yet */
        s->ran = true;
        s->chk.owner_covers_ram = s->chk.owner && !s->memdev && !random;
        trace_mte_tag_storage_reset(s->carveout_base, size,
                                    MTETagStorageInit_str(s->init));
        return;
    }
    if (s->chk.owner) {
        mte_tag_storage_check_reset(s);
    }
    bitmap_zero(s->self_tag_reported, size >> qemu_target_page_bits());
    trace_mte_tag_storage_reset(s->carveout_base, size,
                                MTETagStorageInit_str(s->init));
}

static void mte_tag_storage_finalize(Object *obj)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(obj);

    g_free(s->self_tag_reported);
    if (QTAILQ_IN_USE(s, next)) {
        QTAILQ_REMOVE(&mte_tag_storages, s, next);
    }
    mte_tag_storage_check_finalize(s);
    g_hash_table_destroy(s->chk.cpu_state);
    qemu_mutex_destroy(&s->chk.report_lock);
}

static void mte_tag_storage_init(Object *obj)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(obj);

    qemu_mutex_init(&s->chk.report_lock);
    s->chk.cpu_state = g_hash_table_new_full(NULL, NULL, NULL, g_free);
}

static const PropertyInfo prop_info_binding = {
    .type = "MTETagStorageBinding",
    .description = "v1/v2/v3",
    .enum_table = &MTETagStorageBinding_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

static const PropertyInfo prop_info_check = {
    .type = "MTETagStorageCheck",
    .description = "off/log/event/stop",
    .enum_table = &MTETagStorageCheck_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

static const PropertyInfo prop_info_init = {
    .type = "MTETagStorageInit",
    .description = "zero/random",
    .enum_table = &MTETagStorageInit_lookup,
    .get = qdev_propinfo_get_enum,
    .set = qdev_propinfo_set_enum,
    .set_default_value = qdev_propinfo_set_default_value_enum,
};

static const Property mte_tag_storage_properties[] = {
    DEFINE_PROP_UINT64("tagged-base", MTETagStorageState, tagged_base, 0),
    DEFINE_PROP_UINT64("tagged-size", MTETagStorageState, tagged_size, 0),
    DEFINE_PROP_UINT64("carveout-base", MTETagStorageState, carveout_base, 0),
    DEFINE_PROP_UINT32("block-size", MTETagStorageState, block_size, 4096),
    DEFINE_PROP_SIGNED("binding", MTETagStorageState, binding,
                       MTE_TAG_STORAGE_BINDING_V3, prop_info_binding, int),
    DEFINE_PROP_SIGNED("check", MTETagStorageState, check,
                       MTE_TAG_STORAGE_CHECK_OFF, prop_info_check, int),
    DEFINE_PROP_SIGNED("init", MTETagStorageState, init,
                       MTE_TAG_STORAGE_INIT_ZERO, prop_info_init, int),
    DEFINE_PROP_UINT64("init-seed", MTETagStorageState, init_seed, 0),
    DEFINE_PROP_INT32("node", MTETagStorageState, node, -1),
    DEFINE_PROP_BOOL("interleave", MTETagStorageState, interleave, false),
    DEFINE_PROP_LINK("memdev", MTETagStorageState, memdev,
                     TYPE_MEMORY_BACKEND, HostMemoryBackend *),
    DEFINE_PROP_UINT64("memdev-offset", MTETagStorageState, memdev_offset, 0),
};

static void mte_tag_storage_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    dc->desc = "MTE tag storage carveout";
    rc->phases.hold = mte_tag_storage_reset_hold;
    dc->realize = mte_tag_storage_realize;
    /* Created by boards that know where tag storage goes */
    dc->user_creatable = false;
    dc->vmsd = &vmstate_mte_tag_storage;
    device_class_set_props(dc, mte_tag_storage_properties);
}

static const TypeInfo mte_tag_storage_types[] = {
    {
        .name = TYPE_MTE_TAG_STORAGE,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(MTETagStorageState),
        .instance_init = mte_tag_storage_init,
        .instance_finalize = mte_tag_storage_finalize,
        .class_init = mte_tag_storage_class_init,
    },
};

DEFINE_TYPES(mte_tag_storage_types)
