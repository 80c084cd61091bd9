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

#include "exec/hwaddr.h"
#include "hw/arm/tag-memory-if.h"
#include "qapi/qapi-types-misc-arm.h"
#include "qom/object.h"

#define TYPE_MTE_TAG_STORAGE "mte-tag-storage"
OBJECT_DECLARE_SIMPLE_TYPE(MTETagStorageState, MTE_TAG_STORAGE)

/* One tag byte holds the tags of two 16-byte granules */
#define MTE_TAG_STORAGE_RATIO   ARM_TAG_MEMORY_RATIO

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
 * With the "interleave" property, the byte for P is instead at the offset
 * arm_tag_memory_interleave() gives within its block (the block size is
 * then at least 8 KiB).  The CPUs find it through the map of the board's
 * TYPE_ARM_TAG_MEMORY_IF, which must then hold mte_tag_storage_direct().
 *
 * mte_tag_storage_map_tags() makes the CPUs' non-secure tag address space
 * (where the MTE helpers look up the tag of P at P / 32) point at that same
 * RAM (unless interleaved: a linear alias would be wrong, so there is
 * none), so tag accesses and data accesses alias: there is no copy to
 * keep coherent.  It also maps, where the tags of the carveout itself
 * would be, a region that is not RAM: a Tagged access to the carveout
 * then finds that region, which mte_tag_storage_untagged_access()
 * recognises.
 *
 * The device knows no CPU: the board implements TYPE_ARM_TAG_MEMORY_IF
 * (hw/arm/tag-memory-if.h) and passes each hook of it to the functions
 * below, for each of its tag storage devices.
 *
 * Reuse checker
 * -------------
 * With the "check" property not off, the device keeps, for each carveout
 * byte, who wrote it last: tags (the MTE helpers report their tag accesses
 * to the board, which calls mte_tag_storage_tag_access()) or data (sysbus
 * MMIO region 0 is then an I/O region over the same RAM that sees every
 * CPU and DMA access).
 * Tag reads of data-owned bytes (R1), data reads of tag-owned bytes (R2),
 * Tagged accesses to the carveout (R3) and, with init=random, tag reads of
 * bytes nothing wrote since reset (R4) are counted and reported as the
 * policy says.  For each 16-byte granule of the carveout it also keeps
 * the last tag write and the last data write (kind, CPU and PC, or DMA),
 * so that an R1 report names the data store and an R2 report the tag
 * store that made the bytes what they are.  With check off, none of this
 * costs anything: the board does not ask the CPUs to report tag accesses
 * (ARMTagMemoryMap.report_accesses) and the carveout is plain RAM.
 *
 * Initial contents
 * ----------------
 * Every reset clears the carveout (init=zero) or fills it with bytes
 * derived from init-seed alone (init=random), except a reset with an
 * incoming migration, whose stream brings the contents.
 */
/**
 * mte_tag_storage_direct: where the CPUs find the tags of this device
 * @s: realized tag storage
 * @d: set to the entry for the board's ARMTagMemoryMap
 */
void mte_tag_storage_direct(MTETagStorageState *s, ARMTagMemoryDirect *d);

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

/*
 * Hooks of TYPE_ARM_TAG_MEMORY_IF, for one device: the board calls them
 * for each of its tag storage devices until one returns true.
 */

/**
 * mte_tag_storage_untagged_access: is this a Tagged access to @s?
 * @s: realized tag storage
 * @mr: what the tag address space holds for the access's tags
 * @paddr: physical address of the Tagged data access
 *
 * Returns true if @mr is the region standing for the tags of @s's
 * carveout, i.e. the access targets tag storage, which cannot itself be
 * tagged.  Logs once per carveout page.
 */
bool mte_tag_storage_untagged_access(MTETagStorageState *s, MemoryRegion *mr,
                                     hwaddr paddr);

/**
 * mte_tag_storage_tag_access: tell the reuse checker about a tag access
 * @s: realized tag storage
 * @a: who makes the access (a CPU's MTE helper, or a debugger)
 * @mr: the region holding the tags
 * @offset: offset of the first tag byte in @mr
 * @len: number of tag bytes the access may read or write
 * @write: true for tag stores
 * @paddr: physical address of the data whose tags these are
 * @verdict: set to ARM_TAG_MEMORY_STOP when check=stop stops the VM
 *           before the instruction (only for accesses with a return
 *           address), else ARM_TAG_MEMORY_GO_ON
 *
 * Returns false if the tag bytes are not in @s's carveout.
 */
bool mte_tag_storage_tag_access(MTETagStorageState *s,
                                const ARMTagMemoryAccess *a,
                                MemoryRegion *mr, hwaddr offset, unsigned len,
                                bool write, hwaddr paddr,
                                ARMTagMemoryVerdict *verdict);

/**
 * mte_tag_storage_tagged_carveout: check a Tagged access to I/O memory
 * @s: realized tag storage
 * @a: who makes the access
 * @paddr: physical address of the access
 * @verdict: as for mte_tag_storage_tag_access()
 *
 * With check not off, the carveout is an I/O region for data accesses,
 * so a Tagged access to it reaches the helpers as an access to I/O
 * memory.  Returns true if @paddr is in @s's carveout: the access is then
 * untagged, and reported as R3.
 */
bool mte_tag_storage_tagged_carveout(MTETagStorageState *s,
                                     const ARMTagMemoryAccess *a,
                                     hwaddr paddr,
                                     ARMTagMemoryVerdict *verdict);

/**
 * mte_tag_storage_set_map: the board's map, which leads to the CPUs
 * @s: tag storage
 * @map: the map of the board's TYPE_ARM_TAG_MEMORY_IF; its cpu_ops
 *       locate and stop the CPU of a data access to the checked carveout
 */
void mte_tag_storage_set_map(MTETagStorageState *s,
                             const ARMTagMemoryMap *map);

/**
 * mte_tag_storage_guest_paddr: where a tag byte is, for debuggers
 * @s: realized tag storage
 * @mr: region holding a tag byte
 * @offset: offset of the tag byte in @mr
 * @paddr: set to the guest physical address of the tag byte
 *
 * Returns true if the tag byte is in @s's carveout.
 */
bool mte_tag_storage_guest_paddr(MTETagStorageState *s, MemoryRegion *mr,
                                 hwaddr offset, hwaddr *paddr);

#endif
