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
#include "qemu/cutils.h"
#include "qemu/guest-random.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/madvise.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-misc-arm.h"
#include "qapi/qapi-events-misc-arm.h"
#include "qapi/type-helpers.h"
#include "exec/cpu-common.h"
#include "exec/target_page.h"
#include "hw/core/cpu.h"
#include "hw/core/qdev-prop-internal.h"
#include "hw/qdev-properties.h"
#include "hw/misc/mte-tag-storage.h"
#include "migration/qemu-file-types.h"
#include "migration/vmstate.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qobject/qdict.h"
#include "system/address-spaces.h"
#include "system/hostmem.h"
#include "system/runstate.h"
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

static void log_self_tagged(MTETagStorageState *s, hwaddr paddr)
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

bool mte_tag_storage_untagged_access(MemoryRegion *mr, hwaddr paddr)
{
    MTETagStorageState *s;

    s = (MTETagStorageState *)object_dynamic_cast(mr->owner,
                                                  TYPE_MTE_TAG_STORAGE);
    if (!s || mr != &s->self_tags) {
        return false;
    }
    log_self_tagged(s, paddr);
    return true;
}

MTETagStorageDirect mte_tag_storage_direct[MTE_TAG_STORAGE_MAX_DIRECT];
unsigned mte_tag_storage_ndirect;

void mte_tag_storage_add_direct(hwaddr tagged_base, hwaddr tagged_size,
                                MemoryRegion *tags, hwaddr tags_offset,
                                unsigned interleave_bits, bool hidden)
{
    MTETagStorageDirect *d;

    if (mte_tag_storage_ndirect == MTE_TAG_STORAGE_MAX_DIRECT) {
        /* the helpers translate instead, which cannot interleave */
        assert(!interleave_bits);
        return;
    }
    d = &mte_tag_storage_direct[mte_tag_storage_ndirect];
    d->tagged_base = tagged_base;
    d->tagged_size = tagged_size;
    d->tags = tags;
    d->tags_offset = tags_offset;
    d->interleave_bits = interleave_bits;
    d->hidden = hidden;
    /* Publish the entry before the count that makes it visible */
    qatomic_store_release(&mte_tag_storage_ndirect,
                          mte_tag_storage_ndirect + 1);
}

/* Reuse checker: see "Reuse checker" in the header */

/*
 * What the checker remembers of each vCPU, under report_lock.  vCPUs stop
 * and replay instructions independently, so each needs its own record.
 */
typedef struct MTETagStorageCpuState {
    /* where check=stop stopped, so as to let the instruction pass once */
    bool stopped;
    vaddr stopped_pc;
    hwaddr stopped_addr;
    /*
     * an R3 counted in the middle of a TB, which cpu_io_recompile() runs
     * again on its own if the instruction goes on to access the carveout
     */
    bool r3_pending;
    vaddr r3_pc;
    hwaddr r3_paddr;
} MTETagStorageCpuState;

/* The record of @cs; call with report_lock held */
static MTETagStorageCpuState *cpu_state(MTETagStorageState *s, CPUState *cs)
{
    gpointer key = GINT_TO_POINTER(cs->cpu_index);
    MTETagStorageCpuState *c = g_hash_table_lookup(s->cpu_state, key);

    if (!c) {
        c = g_new0(MTETagStorageCpuState, 1);
        g_hash_table_insert(s->cpu_state, key, c);
    }
    return c;
}

/*
 * The last write of one kind (tags or data) to a 16-byte granule of the
 * carveout.  Written without a lock: two CPUs racing on one granule may
 * leave a record that mixes their writes, but the guest has a race there
 * anyway.  16 bytes per granule and kind: the maps are as large as the
 * carveout, and like the owner map cost only the pages written.
 */
typedef struct MTETagStorageWriterRecord {
    uint64_t pc;             /* CPU writes: the instruction's address */
    uint64_t info;           /* 0: none since reset, else WRITER_* fields */
} MTETagStorageWriterRecord;

#define GRANULE_BITS        4
#define WRITER_WHO_MASK     0xffff  /* CPU index, or DMA requester ID */
#define WRITER_KIND_SHIFT   16      /* MTETagStorageWriterKind + 1 */
#define WRITER_KIND_MASK    0xf
#define WRITER_SEQ_SHIFT    20      /* 44 bits of write sequence number */

static void record_write(MTETagStorageState *s, MTETagStorageWriterRecord *map,
                         hwaddr offset, unsigned len,
                         MTETagStorageWriterKind kind, vaddr pc, unsigned who)
{
    uint64_t seq = qatomic_fetch_inc(&s->write_seq) + 1;
    uint64_t info = seq << WRITER_SEQ_SHIFT |
                    (uint64_t)(kind + 1) << WRITER_KIND_SHIFT |
                    (who & WRITER_WHO_MASK);

    for (hwaddr g = offset >> GRANULE_BITS;
         g <= (offset + len - 1) >> GRANULE_BITS; g++) {
        map[g].pc = pc;
        qatomic_set(&map[g].info, info);
    }
}

/* @r as QAPI, or NULL if nothing wrote since reset */
static MTETagStorageWriter *writer_info(const MTETagStorageWriterRecord *r)
{
    MTETagStorageWriter *w;
    uint64_t info = qatomic_read(&r->info);

    if (!info) {
        return NULL;
    }
    w = g_new0(MTETagStorageWriter, 1);
    w->kind = ((info >> WRITER_KIND_SHIFT) & WRITER_KIND_MASK) - 1;
    w->seq = info >> WRITER_SEQ_SHIFT;
    switch (w->kind) {
    case MTE_TAG_STORAGE_WRITER_KIND_TAG_STORE:
    case MTE_TAG_STORAGE_WRITER_KIND_DATA_STORE:
        w->has_cpu_index = w->has_pc = true;
        w->cpu_index = info & WRITER_WHO_MASK;
        w->pc = r->pc;
        break;
    case MTE_TAG_STORAGE_WRITER_KIND_DMA:
        w->has_requester_id = (info & WRITER_WHO_MASK) != 0;
        w->requester_id = info & WRITER_WHO_MASK;
        break;
    default:
        break;
    }
    return w;
}

static bool writer_equal(const MTETagStorageWriterRecord *a,
                         const MTETagStorageWriterRecord *b)
{
    return a->info == b->info && a->pc == b->pc;
}

/* "data store, cpu 1 pc 0x..., write #7" for log lines */
static char *writer_text(const MTETagStorageWriter *w)
{
    g_autofree char *who = NULL;

    if (!w) {
        return g_strdup("nothing since reset");
    }
    if (w->has_pc) {
        who = g_strdup_printf(" cpu %" PRId64 " pc 0x%" PRIx64, w->cpu_index,
                              w->pc);
    } else if (w->has_requester_id) {
        who = g_strdup_printf(" requester 0x%04x", w->requester_id);
    }
    return g_strdup_printf("%s%s, write #%" PRIu64,
                           MTETagStorageWriterKind_str(w->kind),
                           who ? who : "", w->seq);
}

/*
 * True for data reads that only look: the monitor (x, xp, pmemsave, gdb's
 * "monitor" commands), a debugger, or anything while the VM does not run
 * (no device starts DMA then).  They are no violations.
 */
static bool introspection(MemTxAttrs attrs)
{
    return attrs.debug || monitor_cur() ||
           (!current_cpu && !runstate_is_running());
}

bool mte_tag_storage_checking;
static QTAILQ_HEAD(, MTETagStorageState) tag_storages =
    QTAILQ_HEAD_INITIALIZER(tag_storages);

static const char *const rule_text[MTE_TAG_STORAGE_RULE__MAX] = {
    [MTE_TAG_STORAGE_RULE_R1] = "tags read from data-owned tag storage",
    [MTE_TAG_STORAGE_RULE_R2] = "data read from tag-owned tag storage",
    [MTE_TAG_STORAGE_RULE_R3] = "Tagged access to tag storage itself",
    [MTE_TAG_STORAGE_RULE_R4] = "tags read from tag storage never written "
                                "since reset",
};

/* Who made an access, for reports */
typedef struct MTETagStorageAccess {
    MTETagStorageAccessor kind;
    CPUState *cs;            /* for MTE_TAG_STORAGE_ACCESSOR_CPU */
    uintptr_t ra;            /* its host return address, 0: none */
} MTETagStorageAccess;

/*
 * The PC of the instruction that made the access, without disturbing the
 * CPU state that the rest of its translation block relies on: on AArch64
 * translated code updates the PC relative to its last known value.
 */
static vaddr access_pc(CPUState *cs, uintptr_t ra)
{
    vaddr saved = cs->cc->get_pc(cs), pc;

    if (!ra || !cpu_restore_state(cs, ra)) {
        return saved;
    }
    pc = cs->cc->get_pc(cs);
    cs->cc->set_pc(cs, saved);
    return pc;
}

/* Rate limit log lines and events; returns true if this one may go out */
static bool report_allowed(MTETagStorageState *s)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    bool allowed;

    QEMU_LOCK_GUARD(&s->report_lock);
    if (now - s->report_window >= 1000) {
        if (s->reports_suppressed) {
            warn_report("mte-tag-storage: %" PRIu32 " more violation reports "
                        "suppressed (see query-mte-tag-storage for counts)",
                        s->reports_suppressed);
        }
        s->report_window = now;
        s->reports_in_window = 0;
        s->reports_suppressed = 0;
    }
    allowed = s->reports_in_window < MTE_TAG_STORAGE_REPORTS_PER_SEC;
    if (allowed) {
        s->reports_in_window++;
    } else {
        s->reports_suppressed++;
    }
    return allowed;
}

/*
 * Count and report a violation.  @a says who made the access; only a CPU
 * access with a return address can stop at its instruction.  @writer is
 * the last write of the other kind to the granule concerned, the likely
 * culprit, or NULL.  Does not return when it stops the VM.
 */
static void report_violation(MTETagStorageState *s, MTETagStorageRule rule,
                             hwaddr paddr, hwaddr ts_addr,
                             const MTETagStorageAccess *a,
                             const MTETagStorageWriterRecord *writer)
{
    CPUState *cs = a->kind == MTE_TAG_STORAGE_ACCESSOR_CPU ? a->cs : NULL;
    bool stop = s->check == MTE_TAG_STORAGE_CHECK_STOP && cs && a->ra;
    vaddr pc = cs ? access_pc(cs, a->ra) : 0;
    g_autoptr(MTETagStorageWriter) w = NULL;

    if (stop) {
        MTETagStorageCpuState *c;
        bool rerun;

        qemu_mutex_lock(&s->report_lock);
        c = cpu_state(s, cs);
        rerun = c->stopped && c->stopped_pc == pc && c->stopped_addr == ts_addr;
        c->stopped = false;
        qemu_mutex_unlock(&s->report_lock);
        if (rerun) {
            /* The instruction this CPU stopped at runs again: let it pass */
            return;
        }
    }

    stat64_add(&s->violations[rule], 1);
    w = writer ? writer_info(writer) : NULL;
    trace_mte_tag_storage_violation(MTETagStorageRule_str(rule), paddr,
                                    ts_addr, pc, w ? w->seq : 0,
                                    w ? w->pc : 0);
    if (stop || report_allowed(s)) {
        g_autofree char *who = cs ?
            g_strdup_printf("cpu %d pc 0x%" VADDR_PRIx, cs->cpu_index, pc) :
            g_strdup(a->kind == MTE_TAG_STORAGE_ACCESSOR_DMA ? "DMA" :
                     "debugger");
        g_autofree char *culprit = writer ?
            g_strdup_printf("; last written by %s", writer_text(w)) : NULL;

        warn_report("mte-tag-storage: R%d %s: pa 0x%" HWADDR_PRIx
                    " tag-storage 0x%" HWADDR_PRIx " %s%s", rule + 1,
                    rule_text[rule], paddr, ts_addr, who,
                    culprit ? culprit : "");
        if (s->check >= MTE_TAG_STORAGE_CHECK_EVENT) {
            BQL_LOCK_GUARD();
            qapi_event_send_mte_tag_storage_violation(rule, paddr, ts_addr,
                                                      a->kind, !!cs,
                                                      cs ? cs->cpu_index : 0,
                                                      !!cs, pc, w);
        }
    }

    if (stop) {
        MTETagStorageCpuState *c;

        /* Leave the CPU loop as a debug stop, at the instruction */
        qemu_mutex_lock(&s->report_lock);
        c = cpu_state(s, cs);
        c->stopped = true;
        c->stopped_pc = pc;
        c->stopped_addr = ts_addr;
        qemu_mutex_unlock(&s->report_lock);
        cpu_restore_state(cs, a->ra);
        cs->exception_index = EXCP_DEBUG;
        cpu_loop_exit(cs);
    }
}

/*
 * The owner map is read only where it was written: reading untouched
 * anonymous memory still makes it resident, which for a 4 GiB map (a
 * 128 GiB guest) is what migration and queries must not do.
 */
#define OWNER_CHUNK_BITS 12

static void owner_mark(MTETagStorageState *s, hwaddr offset, unsigned len)
{
    uint64_t first = offset >> OWNER_CHUNK_BITS;
    uint64_t last = (offset + len - 1) >> OWNER_CHUNK_BITS;

    for (uint64_t c = first; c <= last; c++) {
        if (!test_bit(c, s->owner_written)) {
            set_bit_atomic(c, s->owner_written);
        }
    }
}

/* The first data address whose tag is at @offset of the carveout */
static hwaddr data_paddr(MTETagStorageState *s, hwaddr offset)
{
    return s->tagged_base +
           mte_tag_storage_interleave(offset, s->interleave_bits) *
           MTE_TAG_STORAGE_RATIO;
}

/* The tag storage whose RAM is at @offset in @mr; @offset becomes its own */
static MTETagStorageState *carveout_of(MemoryRegion *mr, hwaddr *offset)
{
    MTETagStorageState *s;

    QTAILQ_FOREACH(s, &tag_storages, next) {
        if (mr == s->ram && *offset - s->ram_offset <
                            memory_region_size(&s->carveout)) {
            *offset -= s->ram_offset;
            return s;
        }
    }
    return NULL;
}

/* Whether the tag storage bytes at @offset were written since reset */
static inline bool unwritten_random(MTETagStorageState *s, uint8_t owner)
{
    return owner == MTE_TAG_STORAGE_BYTE_UNWRITTEN &&
           s->init == MTE_TAG_STORAGE_INIT_RANDOM;
}

void mte_tag_storage_tag_access(CPUState *cs, MemoryRegion *mr,
                                hwaddr offset, unsigned len, bool write,
                                hwaddr paddr, uintptr_t ra)
{
    MTETagStorageState *s = carveout_of(mr, &offset);
    MTETagStorageAccess a = { MTE_TAG_STORAGE_ACCESSOR_CPU, cs, ra };
    uint8_t *owner;
    unsigned i;

    if (!s || !s->owner) {
        return;  /* hidden tag RAM, e.g. the secure tag space */
    }
    trace_mte_tag_storage_tag_access(paddr, s->carveout_base + offset, len,
                                     write);
    owner = s->owner + offset;
    if (current_cpu != cs) {
        /* a debugger, from outside the vCPU thread */
        a.kind = MTE_TAG_STORAGE_ACCESSOR_DEBUGGER;
    }
    if (write) {
        bool cpu = a.kind == MTE_TAG_STORAGE_ACCESSOR_CPU;

        stat64_add(&s->tag_writes, 1);
        memset(owner, MTE_TAG_STORAGE_BYTE_TAG, len);
        owner_mark(s, offset, len);
        record_write(s, s->tag_writer, offset, len,
                     cpu ? MTE_TAG_STORAGE_WRITER_KIND_TAG_STORE :
                           MTE_TAG_STORAGE_WRITER_KIND_DEBUGGER,
                     cpu ? access_pc(cs, ra) : 0, cpu ? cs->cpu_index : 0);
        return;
    }
    if (a.kind == MTE_TAG_STORAGE_ACCESSOR_CPU) {
        stat64_add(&s->tag_reads, 1);
    }
    for (i = 0; i < len; i++) {
        if (owner[i] == MTE_TAG_STORAGE_BYTE_DATA &&
            a.kind == MTE_TAG_STORAGE_ACCESSOR_CPU) {
            report_violation(s, MTE_TAG_STORAGE_RULE_R1,
                             MAX(paddr, data_paddr(s, offset + i)),
                             s->carveout_base + offset + i, &a,
                             &s->data_writer[(offset + i) >> GRANULE_BITS]);
            return;
        }
        if (unwritten_random(s, owner[i])) {
            /* a debugger would show tags nobody set, too */
            report_violation(s, MTE_TAG_STORAGE_RULE_R4,
                             MAX(paddr, data_paddr(s, offset + i)),
                             s->carveout_base + offset + i, &a, NULL);
            return;
        }
    }
}

/*
 * A Tagged data access in the middle of a TB that reaches I/O memory makes
 * cpu_io_recompile() run that one instruction again; tag-only instructions
 * (LDG, STG, ...) are not run again.  So count every R3, and recognise the
 * replay: the next check on this CPU, at the end of a TB, same PC and
 * address.
 */
static bool r3_replayed(MTETagStorageState *s, CPUState *cs, hwaddr paddr,
                        uintptr_t ra)
{
    vaddr pc = access_pc(cs, ra);
    MTETagStorageCpuState *c;
    bool replay;

    QEMU_LOCK_GUARD(&s->report_lock);
    c = cpu_state(s, cs);
    replay = cs->neg.can_do_io && c->r3_pending && c->r3_pc == pc &&
             c->r3_paddr == paddr;
    c->r3_pending = !cs->neg.can_do_io;
    c->r3_pc = pc;
    c->r3_paddr = paddr;
    return replay;
}

bool mte_tag_storage_tagged_carveout(CPUState *cs, hwaddr paddr,
                                     uintptr_t ra)
{
    MTETagStorageState *s;

    QTAILQ_FOREACH(s, &tag_storages, next) {
        if (s->owner && paddr >= s->carveout_base &&
            paddr - s->carveout_base < memory_region_size(&s->carveout)) {
            MTETagStorageAccess a = { MTE_TAG_STORAGE_ACCESSOR_CPU, cs, ra };

            if (current_cpu != cs) {
                return true;  /* a debugger's probe */
            }
            if (ra && r3_replayed(s, cs, paddr, ra)) {
                return true;
            }
            log_self_tagged(s, paddr);
            report_violation(s, MTE_TAG_STORAGE_RULE_R3, paddr, paddr, &a,
                             NULL);
            return true;
        }
    }
    return false;
}

/*
 * Data accesses to the carveout while checking: the RAM is mapped through
 * these callbacks, which keep migration's dirty log up to date themselves.
 * A CPU access has specified attributes and runs on that CPU's thread, with
 * cpu->mem_io_pc locating the instruction; anything else is DMA.
 */
static CPUState *data_access_cpu(MemTxAttrs attrs, uintptr_t *ra)
{
    CPUState *cs = current_cpu;

    *ra = 0;
    if (!cs || attrs.unspecified) {
        return NULL;
    }
    if (!attrs.debug) {
        *ra = cs->mem_io_pc;
    }
    return cs;
}

static MemTxResult checked_read(void *opaque, hwaddr addr, uint64_t *data,
                                unsigned size, MemTxAttrs attrs)
{
    MTETagStorageState *s = opaque;
    uint8_t *owner = s->owner + addr;
    bool written = test_bit(addr >> OWNER_CHUNK_BITS, s->owner_written) ||
                   test_bit((addr + size - 1) >> OWNER_CHUNK_BITS,
                            s->owner_written);
    unsigned i;

    trace_mte_tag_storage_data_access(s->carveout_base + addr, size, false);
    stat64_add(&s->data_reads, 1);
    if (!written && s->owner_covers_ram) {
        /*
         * Nothing wrote here since reset: no owners, and zero RAM.  Touch
         * neither, or a dump of a large carveout makes both resident.
         */
        *data = 0;
        return MEMTX_OK;
    }
    for (i = 0; written && i < size; i++) {
        if (owner[i] == MTE_TAG_STORAGE_BYTE_TAG && !introspection(attrs)) {
            MTETagStorageAccess a = { MTE_TAG_STORAGE_ACCESSOR_CPU };

            a.cs = data_access_cpu(attrs, &a.ra);
            if (!a.cs) {
                a.kind = MTE_TAG_STORAGE_ACCESSOR_DMA;
            }
            report_violation(s, MTE_TAG_STORAGE_RULE_R2,
                             data_paddr(s, addr + i),
                             s->carveout_base + addr + i, &a,
                             &s->tag_writer[(addr + i) >> GRANULE_BITS]);
            break;
        }
    }
    *data = ldn_le_p((uint8_t *)memory_region_get_ram_ptr(&s->carveout) +
                     addr, size);
    return MEMTX_OK;
}

static MemTxResult checked_write(void *opaque, hwaddr addr, uint64_t data,
                                 unsigned size, MemTxAttrs attrs)
{
    MTETagStorageState *s = opaque;
    uintptr_t ra;
    CPUState *cs = data_access_cpu(attrs, &ra);

    trace_mte_tag_storage_data_access(s->carveout_base + addr, size, true);
    stat64_add(&s->data_writes, 1);
    memset(s->owner + addr, MTE_TAG_STORAGE_BYTE_DATA, size);
    owner_mark(s, addr, size);
    if (attrs.debug || monitor_cur()) {
        record_write(s, s->data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DEBUGGER, 0, 0);
    } else if (cs) {
        record_write(s, s->data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DATA_STORE,
                     access_pc(cs, ra), cs->cpu_index);
    } else {
        record_write(s, s->data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DMA, 0, attrs.requester_id);
    }
    stn_le_p((uint8_t *)memory_region_get_ram_ptr(&s->carveout) + addr, size,
             data);
    memory_region_set_dirty(s->ram, s->ram_offset + addr, size);
    return MEMTX_OK;
}

static const MemoryRegionOps checked_ops = {
    .read_with_attrs = checked_read,
    .write_with_attrs = checked_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
    .valid.unaligned = true,
    .impl.min_access_size = 1,
    .impl.max_access_size = 8,
    .impl.unaligned = true,
};

/* Who owns [@off, @off + @len) of @s's carveout; @len is whole chunks */
static MTETagStorageOwner block_owner(MTETagStorageState *s, uint64_t off,
                                      uint64_t len)
{
    bool data = false, tag = false;

    for (uint64_t c = off; c < off + len; c += 1 << OWNER_CHUNK_BITS) {
        const uint8_t *owner = s->owner + c;

        if (test_bit(c >> OWNER_CHUNK_BITS, s->owner_written)) {
            data |= !!memchr(owner, MTE_TAG_STORAGE_BYTE_DATA,
                             1 << OWNER_CHUNK_BITS);
            tag |= !!memchr(owner, MTE_TAG_STORAGE_BYTE_TAG,
                            1 << OWNER_CHUNK_BITS);
        }
    }

    if (data && tag) {
        return MTE_TAG_STORAGE_OWNER_MIXED;
    }
    if (data || tag) {
        return data ? MTE_TAG_STORAGE_OWNER_DATA : MTE_TAG_STORAGE_OWNER_TAG;
    }
    return MTE_TAG_STORAGE_OWNER_NEVER_WRITTEN;
}

/* The owners of the blocks of @s in [@base, @end), as runs */
static MTETagStorageBlocksList *query_blocks(MTETagStorageState *s,
                                             hwaddr base, hwaddr end)
{
    MTETagStorageBlocksList *head = NULL, **tail = &head;
    MTETagStorageBlocks *run = NULL;
    hwaddr off, first, last;

    first = QEMU_ALIGN_DOWN(MAX(base, s->carveout_base) - s->carveout_base,
                            s->block_size);
    last = MIN(end, s->carveout_base + memory_region_size(&s->carveout)) -
           s->carveout_base;
    for (off = first; off < last; off += s->block_size) {
        MTETagStorageOwner o = block_owner(s, off, s->block_size);

        if (run && run->owner == o) {
            run->size += s->block_size;
            continue;
        }
        run = g_new0(MTETagStorageBlocks, 1);
        run->base = s->carveout_base + off;
        run->size = s->block_size;
        run->owner = o;
        QAPI_LIST_APPEND(tail, run);
    }
    return head;
}

/* Bytes of the carveout that query-mte-tag-storage describes by granule */
#define WRITERS_MAX_SIZE    65536

/* The last writers of the granules of @s in [@base, @end), as runs */
static MTETagStorageGranulesList *query_writers(MTETagStorageState *s,
                                                hwaddr base, hwaddr end)
{
    static const MTETagStorageWriterRecord none;
    const MTETagStorageWriterRecord *t, *d, *prev_t = NULL, *prev_d = NULL;
    MTETagStorageGranulesList *head = NULL, **tail = &head;
    MTETagStorageGranules *run = NULL;
    uint64_t first, last;

    first = (MAX(base, s->carveout_base) - s->carveout_base) >> GRANULE_BITS;
    last = (MIN(end, s->carveout_base + memory_region_size(&s->carveout)) -
            s->carveout_base + (1 << GRANULE_BITS) - 1) >> GRANULE_BITS;
    for (uint64_t g = first; g < last; g++) {
        /* Unwritten chunks have no records, and need not become resident */
        bool written = test_bit((g << GRANULE_BITS) >> OWNER_CHUNK_BITS,
                                s->owner_written);

        t = written ? &s->tag_writer[g] : &none;
        d = written ? &s->data_writer[g] : &none;
        if (run && writer_equal(t, prev_t) && writer_equal(d, prev_d)) {
            run->size += 1 << GRANULE_BITS;
        } else {
            run = g_new0(MTETagStorageGranules, 1);
            run->base = s->carveout_base + (g << GRANULE_BITS);
            run->size = 1 << GRANULE_BITS;
            run->tag_writer = writer_info(t);
            run->data_writer = writer_info(d);
            QAPI_LIST_APPEND(tail, run);
        }
        prev_t = t;
        prev_d = d;
    }
    return head;
}

MTETagStorageInfo *qmp_query_mte_tag_storage(bool has_base, uint64_t base,
                                             bool has_size, uint64_t size,
                                             bool has_writers, bool writers,
                                             Error **errp)
{
    MTETagStorageInfo *info;
    MTETagStorageRegionList **tail;
    MTETagStorageState *s;
    hwaddr end = has_size ? base + size : UINT64_MAX;

    if (QTAILQ_EMPTY(&tag_storages)) {
        error_setg(errp, "this machine has no MTE tag storage");
        error_append_hint(errp, "Use -M virt,mte=on,tag-storage=on\n");
        return NULL;
    }
    if (has_size && !has_base) {
        error_setg(errp, "'size' needs 'base'");
        return NULL;
    }
    if (has_size && (size == 0 || end < base)) {
        error_setg(errp, "'size' must be non-zero and not wrap around");
        return NULL;
    }
    if (writers && (!has_size || size > WRITERS_MAX_SIZE)) {
        error_setg(errp, "'writers' needs 'base' and a 'size' of at most %d",
                   WRITERS_MAX_SIZE);
        return NULL;
    }
    if (!has_base) {
        base = 0;
    }

    s = QTAILQ_FIRST(&tag_storages);
    info = g_new0(MTETagStorageInfo, 1);
    info->binding = s->binding;
    info->block_size = s->block_size;
    info->check = s->check;
    info->interleave = s->interleave;
    info->init = s->init;
    info->has_init_seed = s->init == MTE_TAG_STORAGE_INIT_RANDOM;
    info->init_seed = s->init_seed;
    tail = &info->regions;
    QTAILQ_FOREACH(s, &tag_storages, next) {
        MTETagStorageRegion *r = g_new0(MTETagStorageRegion, 1);
        hwaddr cbase = s->carveout_base;
        hwaddr cend = cbase + memory_region_size(&s->carveout);

        r->tagged_base = s->tagged_base;
        r->tagged_size = s->tagged_size;
        r->carveout_base = cbase;
        r->carveout_size = cend - cbase;
        r->tag_reads = stat64_get(&s->tag_reads);
        r->tag_writes = stat64_get(&s->tag_writes);
        r->data_reads = stat64_get(&s->data_reads);
        r->data_writes = stat64_get(&s->data_writes);
        r->violations = g_new0(MTETagStorageViolations, 1);
        r->violations->r1 = stat64_get(&s->violations[0]);
        r->violations->r2 = stat64_get(&s->violations[1]);
        r->violations->r3 = stat64_get(&s->violations[2]);
        r->violations->r4 = stat64_get(&s->violations[3]);
        if (s->owner && base < cend && end > cbase) {
            r->blocks = query_blocks(s, base, end);
            if (writers) {
                r->writers = query_writers(s, base, end);
            }
        }
        r->has_blocks = r->blocks != NULL;
        r->has_writers = r->writers != NULL;
        QAPI_LIST_APPEND(tail, r);
    }
    return info;
}

void hmp_info_mte_tag_storage(Monitor *mon, const QDict *qdict)
{
    bool has_base = qdict_haskey(qdict, "base");
    bool has_size = qdict_haskey(qdict, "size");
    bool writers = qdict_get_try_bool(qdict, "writers", false);
    g_autoptr(MTETagStorageInfo) info = NULL;
    MTETagStorageRegionList *r;
    MTETagStorageBlocksList *b;
    MTETagStorageGranulesList *g;
    Error *err = NULL;

    info = qmp_query_mte_tag_storage(has_base, qdict_get_try_int(qdict,
                                                                 "base", 0),
                                     has_size, qdict_get_try_int(qdict,
                                                                 "size", 0),
                                     writers, writers, &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "binding %s, block size 0x%" PRIx64
                   "%s, check %s, init %s",
                   MTETagStorageBinding_str(info->binding), info->block_size,
                   info->interleave ? " interleaved" : "",
                   MTETagStorageCheck_str(info->check),
                   MTETagStorageInit_str(info->init));
    if (info->has_init_seed) {
        monitor_printf(mon, " seed %" PRIu64, info->init_seed);
    }
    monitor_printf(mon, "\n");
    for (r = info->regions; r; r = r->next) {
        MTETagStorageRegion *v = r->value;

        monitor_printf(mon, "tagged 0x%" PRIx64 "-0x%" PRIx64 " carveout 0x%"
                       PRIx64 "-0x%" PRIx64 "\n", v->tagged_base,
                       v->tagged_base + v->tagged_size - 1, v->carveout_base,
                       v->carveout_base + v->carveout_size - 1);
        monitor_printf(mon, "  tag reads %" PRIu64 " tag writes %" PRIu64
                       " data reads %" PRIu64 " data writes %" PRIu64 "\n",
                       v->tag_reads, v->tag_writes, v->data_reads,
                       v->data_writes);
        monitor_printf(mon, "  violations R1 %" PRIu64 " R2 %" PRIu64
                       " R3 %" PRIu64 " R4 %" PRIu64 "\n", v->violations->r1,
                       v->violations->r2, v->violations->r3,
                       v->violations->r4);
        for (b = v->blocks; b; b = b->next) {
            monitor_printf(mon, "  0x%" PRIx64 "-0x%" PRIx64 " %s\n",
                           b->value->base,
                           b->value->base + b->value->size - 1,
                           MTETagStorageOwner_str(b->value->owner));
        }
        for (g = v->writers; g; g = g->next) {
            g_autofree char *tw = writer_text(g->value->tag_writer);
            g_autofree char *dw = writer_text(g->value->data_writer);

            monitor_printf(mon, "  0x%" PRIx64 "-0x%" PRIx64 " tags: %s;"
                           " data: %s\n", g->value->base,
                           g->value->base + g->value->size - 1, tw, dw);
        }
    }
}

bool mte_tag_storage_guest_paddr(MemoryRegion *mr, hwaddr offset,
                                 hwaddr *paddr)
{
    MTETagStorageState *s = carveout_of(mr, &offset);

    if (!s) {
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

/*
 * The owner map has a byte per carveout byte: 4 GiB for a 128 GiB guest.
 * Anonymous memory costs only the pages the guest's tag storage use
 * touches, and owner_map_clear() gives them back.
 */
static uint8_t *owner_map_new(uint64_t size, Error **errp)
{
    uint8_t *map = size == (size_t)size ?
                   qemu_anon_ram_alloc(size, NULL, false, true) : NULL;

    if (!map) {
        error_setg(errp, "cannot allocate a %" PRIu64 " MiB map for "
                   "tag-storage-check", size / MiB);
    }
    return map;
}

static void owner_map_clear(uint8_t *map, uint64_t size)
{
#ifdef CONFIG_LINUX
    /* Private anonymous pages read as zero after MADV_DONTNEED */
    if (!qemu_madvise(map, size, QEMU_MADV_DONTNEED)) {
        return;
    }
#endif
    memset(map, MTE_TAG_STORAGE_BYTE_UNWRITTEN, size);
}

static void mte_tag_storage_realize(DeviceState *dev, Error **errp)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(dev);
    uint64_t size = mte_tag_storage_carveout_size(s->tagged_size);

    if (!mte_tag_storage_check_geometry(s->tagged_size, s->block_size, errp)) {
        return;
    }
    if (s->interleave) {
        if (s->block_size < 2 * MTE_TAG_STORAGE_MIN_BLOCK) {
            error_setg(errp, "interleave needs a block size of 8 KiB or more");
            return;
        }
        if (mte_tag_storage_ndirect == MTE_TAG_STORAGE_MAX_DIRECT) {
            error_setg(errp, "interleave supports at most %d carveouts",
                       MTE_TAG_STORAGE_MAX_DIRECT);
            return;
        }
        s->interleave_bits = ctz32(s->block_size) - MTE_TAG_STORAGE_UNIT_BITS;
    }
    if (s->init != MTE_TAG_STORAGE_INIT_RANDOM && s->init_seed) {
        error_setg(errp, "init-seed needs init=random");
        return;
    }
    if (s->tagged_base % MTE_TAG_STORAGE_RATIO ||
        s->carveout_base % (2 * MiB)) {
        error_setg(errp, "tagged-base must be 32-byte and carveout-base "
                   "2 MiB aligned");
        return;
    }

    if (s->memdev) {
        /* The user's memory backend, which the board made migratable */
        s->ram = host_memory_backend_get_memory(s->memdev);
        s->ram_offset = s->memdev_offset;
        if (s->ram_offset + size < s->ram_offset ||
            s->ram_offset + size > memory_region_size(s->ram)) {
            error_setg(errp, "memdev is too small for a carveout of 0x%"
                       PRIx64 " bytes at offset 0x%" PRIx64, size,
                       s->ram_offset);
            return;
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
            return;
        }
        s->ram = &s->carveout;
        s->ram_offset = 0;
    }
    if (s->check == MTE_TAG_STORAGE_CHECK_OFF) {
        sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->carveout);
    } else {
        /* Data accesses go through checked_ops; tag accesses do not */
        s->owner = owner_map_new(size, errp);
        if (!s->owner) {
            return;
        }
        s->owner_size = size;
        /* A 16-byte record per 16-byte granule: each map has @size bytes */
        s->tag_writer = (MTETagStorageWriterRecord *)owner_map_new(size,
                                                                   errp);
        s->data_writer = s->tag_writer ?
            (MTETagStorageWriterRecord *)owner_map_new(size, errp) : NULL;
        if (!s->data_writer) {
            return;
        }
        s->owner_written = bitmap_new(size >> OWNER_CHUNK_BITS);
        memory_region_init_io(&s->checked, OBJECT(s), &checked_ops, s,
                              "mte-tag-storage.checked", size);
        /*
         * The callbacks never start I/O, and with check=stop they leave
         * through cpu_loop_exit(), which the re-entrancy guard would take
         * for an access still in progress.
         */
        s->checked.disable_reentrancy_guard = true;
        sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->checked);
        qatomic_set(&mte_tag_storage_checking, true);
    }
    QTAILQ_INSERT_TAIL(&tag_storages, s, next);

    mte_tag_storage_add_direct(s->tagged_base, s->tagged_size, s->ram,
                               s->ram_offset, s->interleave_bits, false);

    memory_region_init_alias(&s->tag_alias, OBJECT(s), "mte-tag-storage.tags",
                             &s->carveout, 0, size);
    memory_region_init_io(&s->self_tags, OBJECT(s), &self_tags_ops, s,
                          "mte-tag-storage.self-tags",
                          size / MTE_TAG_STORAGE_RATIO);
    s->self_tag_reported = bitmap_new(size >> qemu_target_page_bits());

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

    if (!s->ran || s->owner) {
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
        if ((s->owner_covers_ram &&
             !test_bit(off >> OWNER_CHUNK_BITS, s->owner_written)) ||
            buffer_is_zero(host + off, page)) {
            continue;
        }
        if (s->owner) {
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
        s->owner_covers_ram = s->owner && !s->memdev && !random;
        trace_mte_tag_storage_reset(s->carveout_base, size,
                                    MTETagStorageInit_str(s->init));
        return;
    }
    if (s->owner) {
        owner_map_clear(s->owner, s->owner_size);
        owner_map_clear((uint8_t *)s->tag_writer, s->owner_size);
        owner_map_clear((uint8_t *)s->data_writer, s->owner_size);
        bitmap_zero(s->owner_written, s->owner_size >> OWNER_CHUNK_BITS);
        s->owner_covers_ram = !s->memdev && !random;
        qatomic_set(&s->write_seq, 0);
        stat64_set(&s->tag_reads, 0);
        stat64_set(&s->tag_writes, 0);
        stat64_set(&s->data_reads, 0);
        stat64_set(&s->data_writes, 0);
        for (int i = 0; i < MTE_TAG_STORAGE_RULE__MAX; i++) {
            stat64_set(&s->violations[i], 0);
        }
        g_hash_table_remove_all(s->cpu_state);
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
        QTAILQ_REMOVE(&tag_storages, s, next);
    }
    if (s->owner) {
        qemu_anon_ram_free(s->owner, s->owner_size);
    }
    if (s->tag_writer) {
        qemu_anon_ram_free(s->tag_writer, s->owner_size);
    }
    if (s->data_writer) {
        qemu_anon_ram_free(s->data_writer, s->owner_size);
    }
    g_free(s->owner_written);
    g_hash_table_destroy(s->cpu_state);
    qemu_mutex_destroy(&s->report_lock);
}

static void mte_tag_storage_init(Object *obj)
{
    MTETagStorageState *s = MTE_TAG_STORAGE(obj);

    qemu_mutex_init(&s->report_lock);
    s->cpu_state = g_hash_table_new_full(NULL, NULL, NULL, g_free);
}

static bool check_needed(void *opaque)
{
    MTETagStorageState *s = opaque;

    return s->owner != NULL;
}

static Stat64 *counter(MTETagStorageState *s, int i)
{
    Stat64 *rw[] = { &s->tag_reads, &s->tag_writes, &s->data_reads,
                     &s->data_writes };

    return i < ARRAY_SIZE(rw) ? rw[i] : &s->violations[i - ARRAY_SIZE(rw)];
}

static int check_pre_save(void *opaque)
{
    MTETagStorageState *s = opaque;

    for (int i = 0; i < ARRAY_SIZE(s->mig_counts); i++) {
        s->mig_counts[i] = stat64_get(counter(s, i));
    }
    s->mig_check = s->check;
    return 0;
}

static int check_pre_load(void *opaque)
{
    MTETagStorageState *s = opaque;

    QEMU_LOCK_GUARD(&s->report_lock);
    g_hash_table_remove_all(s->cpu_state);
    return 0;
}

static int check_post_load(void *opaque, int version_id)
{
    MTETagStorageState *s = opaque;

    for (int i = 0; i < ARRAY_SIZE(s->mig_counts); i++) {
        stat64_set(counter(s, i), s->mig_counts[i]);
    }
    return 0;
}

/*
 * The owner map in the stream: only its written chunks, as (offset,
 * chunk) pairs ended by OWNERS_END, after the map's size.  Most of a large
 * guest's tag storage is never written.
 */
#define OWNERS_PAGE  (1 << OWNER_CHUNK_BITS)
#define OWNERS_END   UINT64_MAX

static int owners_put(QEMUFile *f, void *pv, size_t size,
                      const VMStateField *field, JSONWriter *vmdesc)
{
    MTETagStorageState *s = pv;

    qemu_put_be64(f, s->owner_size);
    for (uint64_t off = 0; off < s->owner_size; off += OWNERS_PAGE) {
        uint64_t len = MIN(OWNERS_PAGE, s->owner_size - off);

        if (test_bit(off >> OWNER_CHUNK_BITS, s->owner_written) &&
            !buffer_is_zero(s->owner + off, len)) {
            qemu_put_be64(f, off);
            qemu_put_buffer(f, s->owner + off, len);
            qemu_put_buffer(f, (uint8_t *)s->tag_writer + off, len);
            qemu_put_buffer(f, (uint8_t *)s->data_writer + off, len);
        }
    }
    qemu_put_be64(f, OWNERS_END);
    return 0;
}

static int mte_tag_storage_post_load(void *opaque, int version_id)
{
    MTETagStorageState *s = opaque;

    /*
     * RAM came from the stream, not through the checker: it may hold bytes
     * no owner accounts for (a source with init=random or without the
     * checker), so read it from now on
     */
    s->owner_covers_ram = false;
    return 0;
}

static int owners_get(QEMUFile *f, void *pv, size_t size,
                      const VMStateField *field)
{
    MTETagStorageState *s = pv;
    uint64_t src_size = qemu_get_be64(f), off;

    if (!s->owner) {
        error_report("mte-tag-storage: the migration source runs "
                     "tag-storage-check=%s, this destination "
                     "tag-storage-check=off: use the same setting on both",
                     MTETagStorageCheck_str(s->mig_check));
        return -EINVAL;
    }
    if (src_size != s->owner_size) {
        error_report("mte-tag-storage: the migration source has 0x%" PRIx64
                     " bytes of tag storage, this destination 0x%" PRIx64
                     ": use the same -m and NUMA layout on both", src_size,
                     s->owner_size);
        return -EINVAL;
    }
    owner_map_clear(s->owner, s->owner_size);
    owner_map_clear((uint8_t *)s->tag_writer, s->owner_size);
    owner_map_clear((uint8_t *)s->data_writer, s->owner_size);
    bitmap_zero(s->owner_written, s->owner_size >> OWNER_CHUNK_BITS);
    while ((off = qemu_get_be64(f)) != OWNERS_END) {
        uint64_t len = MIN(OWNERS_PAGE, s->owner_size - off);

        if (off % OWNERS_PAGE || off >= s->owner_size) {
            error_report("mte-tag-storage: bad owner map offset 0x%" PRIx64
                         " in the migration stream", off);
            return -EINVAL;
        }
        qemu_get_buffer(f, s->owner + off, len);
        qemu_get_buffer(f, (uint8_t *)s->tag_writer + off, len);
        qemu_get_buffer(f, (uint8_t *)s->data_writer + off, len);
        set_bit(off >> OWNER_CHUNK_BITS, s->owner_written);
    }
    return qemu_file_get_error(f);
}

static const VMStateInfo vmstate_info_owners = {
    .name = "mte-tag-storage-owners",
    .get = owners_get,
    .put = owners_put,
};

/* The checker's state: owners, writers and counts survive migration */
static const VMStateDescription vmstate_mte_tag_storage_check = {
    .name = "mte-tag-storage/check",
    .version_id = 3,
    .minimum_version_id = 3,
    .needed = check_needed,
    .pre_save = check_pre_save,
    .pre_load = check_pre_load,
    .post_load = check_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(mig_check, MTETagStorageState),
        VMSTATE_UINT64_ARRAY(mig_counts, MTETagStorageState,
                             4 + MTE_TAG_STORAGE_RULE__MAX),
        VMSTATE_UINT64(write_seq, MTETagStorageState),
        {
            .name = "owners",
            .info = &vmstate_info_owners,
            .flags = VMS_SINGLE,
            .offset = 0,
        },
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_mte_tag_storage = {
    .name = "mte-tag-storage",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = mte_tag_storage_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_mte_tag_storage_check,
        NULL
    },
};

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
