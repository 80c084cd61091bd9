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
#include "qapi/qapi-types-misc-arm.h"
#include "qemu/atomic.h"
#include "qemu/host-utils.h"
#include "qom/object.h"

#define TYPE_MTE_TAG_STORAGE "mte-tag-storage"
OBJECT_DECLARE_SIMPLE_TYPE(MTETagStorageState, MTE_TAG_STORAGE)

/* One tag byte holds the tags of two 16-byte granules */
#define MTE_TAG_STORAGE_RATIO   32

/* With interleave, blocks are permuted in units of one 4 KiB page's tags */
#define MTE_TAG_STORAGE_UNIT_BITS 7

/**
 * mte_tag_storage_interleave: where interleaving puts a tag byte
 * @offset: offset of the tag byte in a linear carveout,
 *          (P - tagged-base) / 32 for the tag of address P
 * @bits: log2 of the number of 128-byte units in a block (0: linear)
 *
 * The unit index within the block is bit-reversed; the block, and the
 * byte within the unit, stay.  The tags of one 4 KiB page remain
 * contiguous, but those of consecutive pages are spread over the whole
 * block.  Bit reversal is its own inverse, so this also maps a carveout
 * offset back to the linear offset of the data it describes.
 */
static inline uint64_t mte_tag_storage_interleave(uint64_t offset,
                                                  unsigned bits)
{
    uint64_t mask = ((1ull << bits) - 1) << MTE_TAG_STORAGE_UNIT_BITS;
    uint64_t unit = (offset & mask) >> MTE_TAG_STORAGE_UNIT_BITS;

    if (!bits) {
        return offset;
    }
    return (offset & ~mask) |
           ((revbit64(unit) >> (64 - bits)) << MTE_TAG_STORAGE_UNIT_BITS);
}

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
 * mte_tag_storage_interleave() gives within its block (the block size is
 * then at least 8 KiB).  The MTE helpers find it through
 * mte_tag_storage_direct_lookup(), which they must then use for every
 * tag of tagged RAM, whatever the security state of the access.
 *
 * mte_tag_storage_map_tags() makes the CPUs' non-secure tag address space
 * (where the MTE helpers look up the tag of P at P / 32) point at that same
 * RAM (unless interleaved: a linear alias would be wrong, so there is
 * none), so tag accesses and data accesses alias: there is no copy to
 * keep coherent.  It also maps, where the tags of the carveout itself would be,
 * a region that is not RAM: the helpers then treat a Tagged access to the
 * carveout as untagged and call mte_tag_storage_untagged_access().
 *
 * Reuse checker
 * -------------
 * With the "check" property not off, the device keeps, for each carveout
 * byte, who wrote it last: tags (the MTE helpers report their tag accesses
 * with mte_tag_storage_tag_access()) or data (sysbus MMIO region 0 is then
 * an I/O region over the same RAM that sees every CPU and DMA access).
 * Tag reads of data-owned bytes (R1), data reads of tag-owned bytes (R2),
 * Tagged accesses to the carveout (R3) and, with init=random, tag reads of
 * bytes nothing wrote since reset (R4) are counted and reported as the
 * policy says.  For each 16-byte granule of the carveout it also keeps
 * the last tag write and the last data write (kind, CPU and PC, or DMA),
 * so that an R1 report names the data store and an R2 report the tag
 * store that made the bytes what they are.  With check off, none of this
 * costs anything: the helpers test mte_tag_storage_checking and the
 * carveout is plain RAM.
 *
 * Initial contents
 * ----------------
 * Every reset clears the carveout (init=zero) or fills it with bytes
 * derived from init-seed alone (init=random), except a reset with an
 * incoming migration, whose stream brings the contents.
 */
/**
 * mte_tag_storage_checking: true if any tag storage runs the reuse checker
 *
 * Read by the MTE helpers on each tag access, so that the checker costs
 * one predictable branch when it is off.
 */
extern bool mte_tag_storage_checking;

/*
 * Fast path for the MTE helpers: the RAM that holds the non-secure tags
 * of a range of tagged RAM, so that finding a tag needs no address space
 * translation.  Boards add an entry per range, for a tag storage carveout
 * or for hidden tag RAM; entries are never removed, as they live as long
 * as the machine.
 */
typedef struct MTETagStorageDirect {
    hwaddr tagged_base;
    hwaddr tagged_size;
    MemoryRegion *tags;     /* RAM with the tag of P at tags_offset + */
    hwaddr tags_offset;     /* (P - tagged_base) / 32, interleaved */
    unsigned interleave_bits;   /* see mte_tag_storage_interleave() */
    bool hidden;            /* not guest-visible, so it never holds code */
} MTETagStorageDirect;

#define MTE_TAG_STORAGE_MAX_DIRECT 16
extern MTETagStorageDirect mte_tag_storage_direct[MTE_TAG_STORAGE_MAX_DIRECT];
extern unsigned mte_tag_storage_ndirect;

/**
 * mte_tag_storage_add_direct: tell the MTE helpers where tags are
 * @tagged_base: physical address of non-secure tagged RAM
 * @tagged_size: its size
 * @tags: RAM region holding its @tagged_size / 32 bytes of tags from
 *        @tags_offset on, which must be where every tag address space of
 *        the CPUs (secure or not) finds them, when they are linear
 * @tags_offset: offset of the first tag byte in @tags
 * @interleave_bits: 0, or the permutation of mte_tag_storage_interleave()
 * @hidden: true if @tags is not mapped in any guest-visible space
 *
 * Without an entry (or beyond MTE_TAG_STORAGE_MAX_DIRECT of them), the
 * helpers translate through the tag address space, with the same result.
 */
void mte_tag_storage_add_direct(hwaddr tagged_base, hwaddr tagged_size,
                                MemoryRegion *tags, hwaddr tags_offset,
                                unsigned interleave_bits, bool hidden);

/**
 * mte_tag_storage_direct_lookup: find where the tag of @paddr is
 * @paddr: physical address of tagged data
 *
 * Returns the entry covering @paddr, or NULL: the caller then looks the
 * tag up in the tag address space.  The tag byte is at offset
 * mte_tag_storage_direct_offset() of the entry's RAM.
 */
static inline hwaddr mte_tag_storage_direct_offset(
    const MTETagStorageDirect *d, hwaddr paddr)
{
    return d->tags_offset +
           mte_tag_storage_interleave((paddr - d->tagged_base) /
                                      MTE_TAG_STORAGE_RATIO,
                                      d->interleave_bits);
}

static inline const MTETagStorageDirect *
mte_tag_storage_direct_lookup(hwaddr paddr)
{
    unsigned n = qatomic_load_acquire(&mte_tag_storage_ndirect);

    for (unsigned i = 0; i < n; i++) {
        const MTETagStorageDirect *d = &mte_tag_storage_direct[i];

        if (paddr - d->tagged_base < d->tagged_size) {
            return d;
        }
    }
    return NULL;
}

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
 * mte_tag_storage_tag_access: tell the reuse checker about a tag access
 * @cs: the CPU whose MTE helper (or debugger request) accesses tags
 * @mr: the region holding the tags, from the tag address space
 * @offset: offset of the first tag byte in @mr
 * @len: number of tag bytes the access may read or write
 * @write: true for tag stores
 * @paddr: physical address of the data whose tags these are
 * @ra: host return address of the helper, 0 for debugger accesses
 *
 * Call only while mte_tag_storage_checking.  Does nothing unless @mr is
 * a carveout.  May not return (check=stop) when @ra is not 0.
 */
void mte_tag_storage_tag_access(CPUState *cs, MemoryRegion *mr,
                                hwaddr offset, unsigned len, bool write,
                                hwaddr paddr, uintptr_t ra);

/**
 * mte_tag_storage_tagged_carveout: check a Tagged access to I/O memory
 * @cs: the CPU making the access
 * @paddr: physical address of the access
 * @ra: host return address of the helper, 0 for debugger accesses
 *
 * While mte_tag_storage_checking, carveouts are I/O regions for data
 * accesses, so a Tagged access to one reaches the helpers as an access to
 * I/O memory.  Returns true if @paddr is in a carveout: the access is then
 * untagged, and reported as R3 (and may not return, with check=stop, when
 * @ra is not 0).
 */
bool mte_tag_storage_tagged_carveout(CPUState *cs, hwaddr paddr,
                                     uintptr_t ra);

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
