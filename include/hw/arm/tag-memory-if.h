/*
 * Interface of the object that owns an Arm CPU's allocation tag memory
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_ARM_TAG_MEMORY_IF_H
#define HW_ARM_TAG_MEMORY_IF_H

#include "exec/hwaddr.h"
#include "exec/vaddr.h"
#include "qemu/host-utils.h"
#include "qom/object.h"

#define TYPE_ARM_TAG_MEMORY_IF "arm-tag-memory-if"
typedef struct ARMTagMemoryIfClass ARMTagMemoryIfClass;
DECLARE_CLASS_CHECKERS(ARMTagMemoryIfClass, ARM_TAG_MEMORY_IF,
                       TYPE_ARM_TAG_MEMORY_IF)
#define ARM_TAG_MEMORY_IF(obj) \
    INTERFACE_CHECK(ARMTagMemoryIf, (obj), TYPE_ARM_TAG_MEMORY_IF)

typedef struct ARMTagMemoryIf ARMTagMemoryIf;

/*
 * Contract
 * --------
 * An Arm CPU with MTE looks up the allocation tag of the 16-byte granule
 * at physical address P at P / 32 in its tag address space, the region
 * that the board links as the CPU's "tag-memory" (low nibble for the even
 * granule, high nibble for the odd one).  A board that keeps those tags in
 * guest-visible RAM (MTE tag storage that the guest may reuse as data)
 * makes the owner of that region (memory_region_owner()) implement this
 * interface.  The CPU asks it for its map once, when it is realized, and
 * then goes through the map only; boards that do not implement the
 * interface see no change.
 *
 * The implementer offers:
 *
 * - A map (get_map), for the TCG fast path: for ranges of tagged RAM, the
 *   RAM region that holds their non-secure tags, possibly in the permuted
 *   layout of arm_tag_memory_interleave().  The helpers then look tags up
 *   there for any security state, without translating through the tag
 *   address space.  The map belongs to the implementer, lives as long as
 *   it does, is initialised with arm_tag_memory_map_init() and gains
 *   entries only before the machine is ready.  It also leads to the hooks,
 *   so that calling one costs no QOM lookup.
 *
 * - Hooks, called on the CPU's thread from the MTE helpers or for a
 *   debugger, each told who makes the access (ARMTagMemoryAccess):
 *   untagged_access when the tag address space holds something other than
 *   RAM for a Tagged access; and, when the map says report_accesses,
 *   tag_access for each tag access and tagged_io_access for each Tagged
 *   access to I/O memory.  Those two return a verdict: the CPU goes on,
 *   or stops before the instruction as a debug stop (only an access with
 *   a return address can stop).  Hooks never touch the CPU's state
 *   themselves: the CPU acts on the verdict.
 *
 * The CPUs in turn offer the implementer, through the map, what it may
 * ask of them for accesses that reach it by other paths (data accesses
 * to I/O memory it owns): ARMTagMemoryCPUOps, set when the CPUs find the
 * map.
 */

/* Bytes of tagged memory whose tags one tag byte holds */
#define ARM_TAG_MEMORY_RATIO        32

/* log2 of the tag bytes that interleaving keeps together: a 4 KiB page's */
#define ARM_TAG_MEMORY_UNIT_BITS    7

/**
 * arm_tag_memory_interleave: where an interleaved layout puts a tag byte
 * @offset: offset of the tag byte in a linear layout, (P - base) / 32
 * @bits: log2 of the number of 128-byte units in a block (0: linear)
 *
 * The unit index within the block is bit-reversed; the block, and the
 * byte within the unit, stay.  The tags of one 4 KiB page remain
 * contiguous, but those of consecutive pages are spread over the whole
 * block.  Bit reversal is its own inverse, so this also maps an offset
 * in the layout back to the linear offset of the data it describes.
 */
static inline uint64_t arm_tag_memory_interleave(uint64_t offset,
                                                 unsigned bits)
{
    uint64_t mask = ((1ull << bits) - 1) << ARM_TAG_MEMORY_UNIT_BITS;
    uint64_t unit = (offset & mask) >> ARM_TAG_MEMORY_UNIT_BITS;

    if (!bits) {
        return offset;
    }
    return (offset & ~mask) |
           ((revbit64(unit) >> (64 - bits)) << ARM_TAG_MEMORY_UNIT_BITS);
}

/* Where the tags of one range of tagged RAM are */
typedef struct ARMTagMemoryDirect {
    hwaddr tagged_base;
    hwaddr tagged_size;
    MemoryRegion *tags;         /* RAM with the tag of P at tags_offset + */
    hwaddr tags_offset;         /* (P - tagged_base) / 32, interleaved */
    unsigned interleave_bits;   /* see arm_tag_memory_interleave() */
    bool hidden;                /* not guest-visible, so it never holds code */
    /*
     * Unless hidden: where the guest sees those tags, tagged_size / 32
     * bytes of tag storage from tags_paddr.  It is RAM, which may be
     * mapped through I/O callbacks (to check its use) that take stores
     * of any width from 1 to 8 bytes alike.
     */
    hwaddr tags_paddr;
} ARMTagMemoryDirect;

/*
 * What the CPUs do for the implementer, on the thread of @cs.  @ra is a
 * host return address into translated code (cpu->mem_io_pc, or what a
 * hook was given), or 0 for none.
 */
typedef struct ARMTagMemoryCPUOps {
    /*
     * The guest address of the instruction behind @ra (with 0, the CPU's
     * PC as last saved), found without changing the CPU's state.
     */
    vaddr (*insn_pc)(CPUState *cs, uintptr_t ra);
    /*
     * Leave the CPU loop for a debug stop (EXCP_DEBUG) before the
     * instruction behind @ra, which must not be 0; the instruction runs
     * again when the VM resumes.
     */
    G_NORETURN void (*debug_stop)(CPUState *cs, uintptr_t ra);
    /*
     * Where the guest's code goes on from, for reports: its link register
     * (AArch64 X30, AArch32 R14), and up to @max return addresses of its
     * AArch64 frame records, innermost first (how many it found: none in
     * AArch32 or without frame pointers), without authentication codes.
     * The frame records are read as debug accesses: neither the CPU's
     * state nor what others see of the guest's memory changes.
     */
    vaddr (*link_register)(CPUState *cs);
    unsigned (*backtrace)(CPUState *cs, vaddr *ret, unsigned max);
} ARMTagMemoryCPUOps;

/* Who makes a tag access */
typedef enum ARMTagMemoryAccessor {
    ARM_TAG_MEMORY_BY_CPU,      /* an instruction of the guest */
    ARM_TAG_MEMORY_BY_DEBUGGER, /* a debugger's request (the gdbstub) */
    /*
     * QEMU looks for a report of its own (the tag check fault that stops
     * the VM, which the guest's access already told of): nobody's access
     */
    ARM_TAG_MEMORY_BY_QEMU,
    /*
     * The guest's instruction again, after a debug stop before it took
     * effect: the owner heard of its tag reads already
     */
    ARM_TAG_MEMORY_BY_CPU_AGAIN,
} ARMTagMemoryAccessor;

/* A tag access, as the CPU tells the hooks */
typedef struct ARMTagMemoryAccess {
    CPUState *cs;               /* the CPU, or the CPU a debugger uses */
    ARMTagMemoryAccessor by;
    /*
     * An instruction in the middle of its translation block that goes on
     * to access I/O memory is run again, alone: a hook hears of it twice.
     */
    bool mid_tb;
    uintptr_t ra;               /* the helper's return address, 0: none */
    const ARMTagMemoryCPUOps *cpu_ops;  /* of @cs */
} ARMTagMemoryAccess;

/* What the CPU does after a hook */
typedef enum ARMTagMemoryVerdict {
    ARM_TAG_MEMORY_GO_ON,       /* the access goes on */
    ARM_TAG_MEMORY_STOP,        /* a debug stop before the instruction */
} ARMTagMemoryVerdict;

/* The guest address of the instruction making access @a */
static inline vaddr arm_tag_memory_access_pc(const ARMTagMemoryAccess *a)
{
    return a->cpu_ops->insn_pc(a->cs, a->ra);
}

/* The link register of the CPU making access @a */
static inline vaddr arm_tag_memory_access_lr(const ARMTagMemoryAccess *a)
{
    return a->cpu_ops->link_register(a->cs);
}

typedef struct ARMTagMemoryMap {
    bool report_accesses;       /* call tag_access and tagged_io_access */
    unsigned count;
    ARMTagMemoryDirect *entries;
    ARMTagMemoryIf *owner;      /* the implementer, and its hooks */
    ARMTagMemoryIfClass *hooks;
    const ARMTagMemoryCPUOps *cpu_ops;  /* set by arm_tag_memory_find_map */
} ARMTagMemoryMap;

/**
 * arm_tag_memory_map_init: initialise the map of @owner, empty
 * @map: the map, which @owner's get_map returns
 * @owner: an object that implements TYPE_ARM_TAG_MEMORY_IF
 */
void arm_tag_memory_map_init(ARMTagMemoryMap *map, Object *owner);

/**
 * arm_tag_memory_map_add: add a range to @map
 * @map: the implementer's map
 * @d: the range; its linear tags (interleave_bits 0) must be where every
 *     tag address space of the CPUs finds them
 *
 * Only before the machine is ready: the CPUs read the map without locks.
 */
void arm_tag_memory_map_add(ARMTagMemoryMap *map, const ARMTagMemoryDirect *d);

/**
 * arm_tag_memory_map_lookup: the entry of @map covering @paddr, or NULL
 * @map: a map, or NULL for none
 * @paddr: physical address of tagged data
 */
static inline const ARMTagMemoryDirect *
arm_tag_memory_map_lookup(const ARMTagMemoryMap *map, hwaddr paddr)
{
    if (!map) {
        return NULL;
    }
    for (unsigned i = 0; i < map->count; i++) {
        const ARMTagMemoryDirect *d = &map->entries[i];

        if (paddr - d->tagged_base < d->tagged_size) {
            return d;
        }
    }
    return NULL;
}

/**
 * arm_tag_memory_is_tag_storage: is [@paddr, @paddr + @len) guest-visible
 * tag storage of one entry of @map?
 * @map: a map, or NULL for none
 *
 * Such memory is RAM even when the CPU finds it behind I/O callbacks: the
 * CPU may write it with 8-byte stores where it would make byte stores to
 * other I/O memory (DC ZVA).
 */
static inline bool arm_tag_memory_is_tag_storage(const ARMTagMemoryMap *map,
                                                 hwaddr paddr, hwaddr len)
{
    for (unsigned i = 0; map && i < map->count; i++) {
        const ARMTagMemoryDirect *d = &map->entries[i];
        hwaddr size = d->tagged_size / ARM_TAG_MEMORY_RATIO;

        if (!d->hidden && paddr - d->tags_paddr < size &&
            len <= size - (paddr - d->tags_paddr)) {
            return true;
        }
    }
    return false;
}

/* The offset in @d->tags of the tag byte of @paddr, which @d covers */
static inline hwaddr arm_tag_memory_direct_offset(const ARMTagMemoryDirect *d,
                                                  hwaddr paddr)
{
    return d->tags_offset +
           arm_tag_memory_interleave((paddr - d->tagged_base) /
                                     ARM_TAG_MEMORY_RATIO,
                                     d->interleave_bits);
}

struct ARMTagMemoryIfClass {
    InterfaceClass parent_class;

    /* The map; called once per CPU, at realize */
    ARMTagMemoryMap *(*get_map)(ARMTagMemoryIf *tm);

    /*
     * @mr, found in the tag address space for a Tagged access to @paddr,
     * is not RAM: return true if that is because @paddr is itself tag
     * storage, which cannot be tagged.  The access is then untagged: LDG
     * reads tag 0, tag stores are dropped, tag checks pass.
     */
    bool (*untagged_access)(ARMTagMemoryIf *tm, MemoryRegion *mr,
                            hwaddr paddr);

    /*
     * A Tagged access @a to @paddr reached I/O memory: return true if
     * @paddr is tag storage, whose accesses are then untagged, and set
     * @verdict.
     */
    bool (*tagged_io_access)(ARMTagMemoryIf *tm, const ARMTagMemoryAccess *a,
                             hwaddr paddr, ARMTagMemoryVerdict *verdict);

    /*
     * Access @a reads or writes (@write, for tag stores) @len tag bytes at
     * @offset in @mr (which holds them) for the data at @paddr.
     */
    ARMTagMemoryVerdict (*tag_access)(ARMTagMemoryIf *tm,
                                      const ARMTagMemoryAccess *a,
                                      MemoryRegion *mr, hwaddr offset,
                                      unsigned len, bool write, hwaddr paddr);

    /*
     * For debuggers: if the tag byte at @offset in @mr is guest-visible,
     * set @paddr to its guest physical address and return true.
     */
    bool (*tag_guest_paddr)(ARMTagMemoryIf *tm, MemoryRegion *mr,
                            hwaddr offset, hwaddr *paddr);
};

/**
 * arm_tag_memory_find_map: the map of the owner of a CPU's tag memory
 * @tag_memory: the region linked as the CPU's "tag-memory"
 * @cpu_ops: what the CPU does for the owner; the same for every CPU
 *
 * Returns NULL if the owner does not implement TYPE_ARM_TAG_MEMORY_IF.
 * Only before the machine is ready.
 */
const ARMTagMemoryMap *
arm_tag_memory_find_map(MemoryRegion *tag_memory,
                        const ARMTagMemoryCPUOps *cpu_ops);

/*
 * Calls for the CPU, through the map that arm_tag_memory_find_map() gave
 * it: each does nothing (returns false) when @map is NULL or its owner
 * does not implement the hook.
 */
static inline bool arm_tag_memory_untagged_access(const ARMTagMemoryMap *map,
                                                  MemoryRegion *mr,
                                                  hwaddr paddr)
{
    return map && map->hooks->untagged_access &&
           map->hooks->untagged_access(map->owner, mr, paddr);
}

static inline bool
arm_tag_memory_tagged_io_access(const ARMTagMemoryMap *map,
                                const ARMTagMemoryAccess *a, hwaddr paddr,
                                ARMTagMemoryVerdict *verdict)
{
    *verdict = ARM_TAG_MEMORY_GO_ON;
    return map && map->hooks->tagged_io_access &&
           map->hooks->tagged_io_access(map->owner, a, paddr, verdict);
}

static inline ARMTagMemoryVerdict
arm_tag_memory_tag_access(const ARMTagMemoryMap *map,
                          const ARMTagMemoryAccess *a, MemoryRegion *mr,
                          hwaddr offset, unsigned len, bool write,
                          hwaddr paddr)
{
    if (map && map->hooks->tag_access) {
        return map->hooks->tag_access(map->owner, a, mr, offset, len, write,
                                      paddr);
    }
    return ARM_TAG_MEMORY_GO_ON;
}

static inline bool arm_tag_memory_tag_guest_paddr(const ARMTagMemoryMap *map,
                                                  MemoryRegion *mr,
                                                  hwaddr offset,
                                                  hwaddr *paddr)
{
    return map && map->hooks->tag_guest_paddr &&
           map->hooks->tag_guest_paddr(map->owner, mr, offset, paddr);
}

#endif
