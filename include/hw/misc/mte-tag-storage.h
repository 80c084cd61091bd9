/*
 * MTE tag storage carveout: guest-visible RAM that holds the allocation
 * tags of tagged RAM, as on hardware that lets the OS reuse tag storage.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_MTE_TAG_STORAGE_H
#define HW_MISC_MTE_TAG_STORAGE_H

#include "hw/sysbus.h"
#include "qom/object.h"

#define TYPE_MTE_TAG_STORAGE "mte-tag-storage"
OBJECT_DECLARE_SIMPLE_TYPE(MTETagStorageState, MTE_TAG_STORAGE)

/* One tag byte holds the tags of two 16-byte granules */
#define MTE_TAG_STORAGE_RATIO   32

typedef enum MTETagStorageBinding {
    MTE_TAG_STORAGE_BINDING_V1 = 1, /* root metadata@, carveout not in RAM */
    MTE_TAG_STORAGE_BINDING_V2 = 2, /* root tag-storage@, carveout not in RAM */
    MTE_TAG_STORAGE_BINDING_V3 = 3, /* reserved-memory, carveout is memory */
} MTETagStorageBinding;

/*
 * Contract
 * --------
 * The device owns the carveout, a RAM region of tagged-size / 32 bytes that
 * the board maps into the system address space at carveout-base (sysbus
 * MMIO region 0).  The allocation tag of the granule at physical address P
 * (tagged-base <= P < tagged-base + tagged-size) is the nibble at
 *     carveout-base + (P - tagged-base) / 32
 * low nibble for the even granule, high nibble for the odd one.
 *
 * mte_tag_storage_map_tags() makes the CPUs' non-secure tag address space
 * (where the MTE helpers look up the tag of P at P / 32) point at that same
 * RAM, so tag accesses and data accesses alias: there is no copy to keep
 * coherent.  It also maps, where the tags of the carveout itself would be,
 * a region that is not RAM: the helpers then treat a Tagged access to the
 * carveout as untagged and call mte_tag_storage_untagged_access().
 */
struct MTETagStorageState {
    SysBusDevice parent_obj;

    MemoryRegion carveout;   /* the tag storage, guest-visible RAM */
    MemoryRegion tag_alias;  /* the carveout, seen from the tag space */
    MemoryRegion self_tags;  /* tags of the carveout itself: none */
    unsigned long *self_tag_reported;  /* carveout pages already logged */

    /* properties */
    uint64_t tagged_base;
    uint64_t tagged_size;
    uint64_t carveout_base;
    uint32_t block_size;
    uint8_t binding;
};

/**
 * mte_tag_storage_carveout_size: size of the carveout for @tagged_size bytes
 */
static inline uint64_t mte_tag_storage_carveout_size(uint64_t tagged_size)
{
    return tagged_size / MTE_TAG_STORAGE_RATIO;
}

/**
 * mte_tag_storage_check_block_size: validate tag-storage-block-size alone
 * @block_size: value of the DT block-size property, in bytes
 * @errp: error object naming the offending machine option
 *
 * A power of two, a multiple of 4096, below 4 GiB.
 */
bool mte_tag_storage_check_block_size(uint64_t block_size, Error **errp);

/**
 * mte_tag_storage_check_geometry: validate a tag storage configuration
 * @tagged_size: bytes of tagged RAM
 * @block_size: value of the DT block-size property, in bytes
 * @errp: error object naming the offending machine option
 */
bool mte_tag_storage_check_geometry(uint64_t tagged_size, uint64_t block_size,
                                    Error **errp);

/**
 * mte_tag_storage_parse_binding: "v1", "v2" or "v3" to a binding version
 */
bool mte_tag_storage_parse_binding(const char *str, MTETagStorageBinding *b,
                                   Error **errp);

/**
 * mte_tag_storage_map_tags: route the tags of tagged RAM to the carveout
 * @s: realized tag storage
 * @tag_sysmem: root of the CPUs' non-secure tag address space
 */
void mte_tag_storage_map_tags(MTETagStorageState *s, MemoryRegion *tag_sysmem);

/**
 * mte_tag_storage_fdt_populate: describe the tag storage in @fdt
 * @s: realized tag storage
 * @fdt: device tree whose /memory nodes are final (arm_load_dtb() wrote
 *       them); adds a phandle to the tagged RAM's node and the nodes of
 *       the selected binding
 */
void mte_tag_storage_fdt_populate(MTETagStorageState *s, void *fdt);

/**
 * mte_tag_storage_untagged_access: hook for the TCG MTE helpers
 * @mr: what the tag address space holds for the access's tags
 * @paddr: physical address of the Tagged data access
 *
 * Returns true if @mr is the region standing for the tags of a carveout,
 * i.e. the access targets tag storage, which cannot itself be tagged.
 * The caller then performs the access as untagged: LDG reads tag 0, tag
 * stores are dropped, tag checks pass.  Logs once per carveout page.
 */
bool mte_tag_storage_untagged_access(MemoryRegion *mr, hwaddr paddr);

/**
 * mte_tag_storage_guest_paddr: where a tag byte is, for debuggers
 * @mr: region found in the tag address space for a tag
 * @offset: offset of the tag byte in @mr
 * @paddr: set to the guest physical address of the tag byte
 *
 * Returns true if @mr is a carveout, i.e. the tag byte is guest-visible.
 */
bool mte_tag_storage_guest_paddr(MemoryRegion *mr, hwaddr offset,
                                 hwaddr *paddr);

#endif
