/*
 * MTE tag storage carveout: the reuse checker.  Who wrote each byte
 * of tag storage last, and each granule's last tag and data writes;
 * violations of rules R1 to R4, their reports, and the migration of it all.
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
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/madvise.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-events-misc-arm.h"
#include "exec/cpu-common.h"
#include "hw/core/cpu.h"
#include "migration/qemu-file-types.h"
#include "migration/vmstate.h"
#include "system/runstate.h"
#include "mte-tag-storage-internal.h"
#include "trace.h"

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
    MTETagStorageCpuState *c = g_hash_table_lookup(s->chk.cpu_state, key);

    if (!c) {
        c = g_new0(MTETagStorageCpuState, 1);
        g_hash_table_insert(s->chk.cpu_state, key, c);
    }
    return c;
}

#define WRITER_WHO_MASK     0xffff  /* CPU index, or DMA requester ID */
#define WRITER_KIND_SHIFT   16      /* MTETagStorageWriterKind + 1 */
#define WRITER_KIND_MASK    0xf
#define WRITER_SEQ_SHIFT    20      /* 44 bits of write sequence number */

static void record_write(MTETagStorageState *s, MTETagStorageWriterRecord *map,
                         hwaddr offset, unsigned len,
                         MTETagStorageWriterKind kind, vaddr pc, vaddr lr,
                         unsigned who)
{
    uint64_t seq = qatomic_fetch_inc(&s->chk.write_seq) + 1;
    uint64_t info = seq << WRITER_SEQ_SHIFT |
                    (uint64_t)(kind + 1) << WRITER_KIND_SHIFT |
                    (who & WRITER_WHO_MASK);

    for (hwaddr g = offset >> GRANULE_BITS;
         g <= (offset + len - 1) >> GRANULE_BITS; g++) {
        map[g].pc = pc;
        map[g].lr = lr;
        qatomic_set(&map[g].info, info);
    }
}

/* @r as QAPI, or NULL if nothing wrote since reset */
MTETagStorageWriter *
mte_tag_storage_writer_info(const MTETagStorageWriterRecord *r)
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
        w->has_cpu_index = w->has_pc = w->has_lr = true;
        w->cpu_index = info & WRITER_WHO_MASK;
        w->pc = r->pc;
        w->lr = r->lr;
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

bool mte_tag_storage_writer_equal(const MTETagStorageWriterRecord *a,
                         const MTETagStorageWriterRecord *b)
{
    return a->info == b->info && a->pc == b->pc && a->lr == b->lr;
}

/* "data-store cpu 1 pc 0x... lr 0x..., write #7" for log lines */
char *mte_tag_storage_writer_text(const MTETagStorageWriter *w)
{
    g_autofree char *who = NULL;

    if (!w) {
        return g_strdup("nothing since reset");
    }
    if (w->has_pc) {
        who = g_strdup_printf(" cpu %" PRId64 " pc 0x%" PRIx64 " lr 0x%"
                              PRIx64, w->cpu_index, w->pc, w->lr);
    } else if (w->has_requester_id) {
        who = g_strdup_printf(" requester 0x%04x", w->requester_id);
    }
    return g_strdup_printf("%s%s, write #%" PRIu64,
                           MTETagStorageWriterKind_str(w->kind),
                           who ? who : "", w->seq);
}

/*
 * True for data reads that only look: a debugger's or the monitor's
 * (their callers mark them MemTxAttrs.debug), or anything while the VM
 * does not run (no device starts DMA then).  They are no violations.
 */
static bool introspection(MemTxAttrs attrs)
{
    return attrs.debug || (!current_cpu && !runstate_is_running());
}

static const char *const rule_text[MTE_TAG_STORAGE_RULE__MAX] = {
    [MTE_TAG_STORAGE_RULE_TAG_READ_OF_DATA] =
        "tags read from data-owned tag storage",
    [MTE_TAG_STORAGE_RULE_DATA_READ_OF_TAGS] =
        "data read from tag-owned tag storage",
    [MTE_TAG_STORAGE_RULE_TAGGED_ACCESS_TO_TAG_STORAGE] =
        "Tagged access to tag storage itself",
    [MTE_TAG_STORAGE_RULE_TAG_READ_OF_UNWRITTEN] =
        "tags read from tag storage never written since reset",
};

/* Who made an access, for reports */
typedef struct MTETagStorageAccess {
    MTETagStorageAccessor kind;
    const ARMTagMemoryAccess *cpu;   /* for MTE_TAG_STORAGE_ACCESSOR_CPU */
} MTETagStorageAccess;

/* Rate limit log lines and events; returns true if this one may go out */
static bool report_allowed(MTETagStorageState *s)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    bool allowed;

    QEMU_LOCK_GUARD(&s->chk.report_lock);
    if (now - s->chk.report_window >= 1000) {
        if (s->chk.reports_suppressed) {
            warn_report("mte-tag-storage: %" PRIu32 " more violation reports "
                        "suppressed (see query-mte-tag-storage for counts)",
                        s->chk.reports_suppressed);
        }
        s->chk.report_window = now;
        s->chk.reports_in_window = 0;
        s->chk.reports_suppressed = 0;
    }
    allowed = s->chk.reports_in_window < MTE_TAG_STORAGE_REPORTS_PER_SEC;
    if (allowed) {
        s->chk.reports_in_window++;
    } else {
        s->chk.reports_suppressed++;
    }
    return allowed;
}

/*
 * Count and report a violation.  @a says who made the access; only a CPU
 * access with a return address can stop at its instruction.  @writer is
 * the last write of the other kind to the granule concerned, the likely
 * culprit, or NULL.  Returns ARM_TAG_MEMORY_STOP when the CPU must stop
 * before the instruction.
 */
static ARMTagMemoryVerdict
report_violation(MTETagStorageState *s, MTETagStorageRule rule, hwaddr paddr,
                 hwaddr ts_addr, const MTETagStorageAccess *a,
                 const MTETagStorageWriterRecord *writer)
{
    const ARMTagMemoryAccess *cpu = a->cpu;
    CPUState *cs = cpu ? cpu->cs : NULL;
    bool stop = s->check == MTE_TAG_STORAGE_CHECK_STOP && cpu && cpu->ra;
    vaddr pc = cpu ? arm_tag_memory_access_pc(cpu) : 0;
    g_autoptr(MTETagStorageWriter) w = NULL;

    if (stop) {
        MTETagStorageCpuState *c;
        bool rerun;

        qemu_mutex_lock(&s->chk.report_lock);
        c = cpu_state(s, cs);
        rerun = c->stopped && c->stopped_pc == pc && c->stopped_addr == ts_addr;
        c->stopped = false;
        qemu_mutex_unlock(&s->chk.report_lock);
        if (rerun) {
            /* The instruction this CPU stopped at runs again: let it pass */
            return ARM_TAG_MEMORY_GO_ON;
        }
    }

    stat64_add(&s->chk.violations[rule], 1);
    w = writer ? mte_tag_storage_writer_info(writer) : NULL;
    trace_mte_tag_storage_violation(MTETagStorageRule_str(rule), paddr,
                                    ts_addr, pc, w ? w->seq : 0,
                                    w ? w->pc : 0);
    if (stop || report_allowed(s)) {
        vaddr frames[MTE_TAG_STORAGE_BACKTRACE_DEPTH];
        unsigned depth = cs ? cpu->cpu_ops->backtrace(cs, frames,
                                                      ARRAY_SIZE(frames)) : 0;
        vaddr lr = cs ? arm_tag_memory_access_lr(cpu) : 0;
        g_autoptr(GString) who = g_string_new(NULL);
        g_autofree char *culprit = writer ?
            mte_tag_storage_writer_text(w) : NULL;

        if (cs) {
            g_string_printf(who, "cpu %d pc 0x%" VADDR_PRIx " lr 0x%"
                            VADDR_PRIx, cs->cpu_index, pc, lr);
            for (unsigned i = 0; i < depth; i++) {
                g_string_append_printf(who, "%s0x%" VADDR_PRIx,
                                       i ? "," : " bt ", frames[i]);
            }
        } else {
            g_string_assign(who, a->kind == MTE_TAG_STORAGE_ACCESSOR_DMA ?
                                 "DMA" : "debugger");
        }
        warn_report("mte-tag-storage: R%d %s: pa 0x%" HWADDR_PRIx
                    " tag-storage 0x%" HWADDR_PRIx " %s%s%s", rule + 1,
                    rule_text[rule], paddr, ts_addr, who->str,
                    culprit ? "; last written by " : "",
                    culprit ? culprit : "");
        if (s->check >= MTE_TAG_STORAGE_CHECK_EVENT) {
            g_autoptr(uint64List) backtrace = NULL;

            for (unsigned i = depth; i-- > 0;) {
                QAPI_LIST_PREPEND(backtrace, frames[i]);
            }
            BQL_LOCK_GUARD();
            qapi_event_send_mte_tag_storage_violation(rule, paddr, ts_addr,
                                                      a->kind, !!cs,
                                                      cs ? cs->cpu_index : 0,
                                                      !!cs, pc, !!cs, lr,
                                                      depth > 0, backtrace,
                                                      w);
        }
    }

    if (stop) {
        MTETagStorageCpuState *c;

        /* Let it pass once when the VM resumes and the CPU runs it again */
        qemu_mutex_lock(&s->chk.report_lock);
        c = cpu_state(s, cs);
        c->stopped = true;
        c->stopped_pc = pc;
        c->stopped_addr = ts_addr;
        qemu_mutex_unlock(&s->chk.report_lock);
        return ARM_TAG_MEMORY_STOP;
    }
    return ARM_TAG_MEMORY_GO_ON;
}

static void owner_mark(MTETagStorageState *s, hwaddr offset, unsigned len)
{
    uint64_t first = offset >> OWNER_CHUNK_BITS;
    uint64_t last = (offset + len - 1) >> OWNER_CHUNK_BITS;

    for (uint64_t c = first; c <= last; c++) {
        if (!test_bit(c, s->chk.owner_written)) {
            set_bit_atomic(c, s->chk.owner_written);
        }
    }
}

/* The first data address whose tag is at @offset of the carveout */
static hwaddr data_paddr(MTETagStorageState *s, hwaddr offset)
{
    return s->tagged_base +
           arm_tag_memory_interleave(offset, s->interleave_bits) *
           MTE_TAG_STORAGE_RATIO;
}

/* Whether the tag storage bytes at @offset were written since reset */
static inline bool unwritten_random(MTETagStorageState *s, uint8_t owner)
{
    return owner == MTE_TAG_STORAGE_BYTE_UNWRITTEN &&
           s->init == MTE_TAG_STORAGE_INIT_RANDOM;
}

bool mte_tag_storage_tag_access(MTETagStorageState *s,
                                const ARMTagMemoryAccess *cpu,
                                MemoryRegion *mr, hwaddr offset, unsigned len,
                                bool write, hwaddr paddr,
                                ARMTagMemoryVerdict *verdict)
{
    bool by_cpu = cpu->by == ARM_TAG_MEMORY_BY_CPU ||
                  cpu->by == ARM_TAG_MEMORY_BY_CPU_AGAIN;
    MTETagStorageAccess a = {
        by_cpu ? MTE_TAG_STORAGE_ACCESSOR_CPU :
                 MTE_TAG_STORAGE_ACCESSOR_DEBUGGER,
        by_cpu ? cpu : NULL,
    };
    uint8_t *owner;
    unsigned i;

    *verdict = ARM_TAG_MEMORY_GO_ON;
    if (!mte_tag_storage_owns(s, mr, &offset)) {
        return false;
    }
    if (!s->chk.owner) {
        return true;  /* not checked */
    }
    trace_mte_tag_storage_tag_access(paddr, s->carveout_base + offset, len,
                                     write);
    owner = s->chk.owner + offset;
    if (write) {
        stat64_add(&s->chk.tag_writes, 1);
        memset(owner, MTE_TAG_STORAGE_BYTE_TAG, len);
        owner_mark(s, offset, len);
        if (!by_cpu) {
            record_write(s, s->chk.tag_writer, offset, len,
                         MTE_TAG_STORAGE_WRITER_KIND_DEBUGGER, 0, 0, 0);
        } else {
            record_write(s, s->chk.tag_writer, offset, len,
                         MTE_TAG_STORAGE_WRITER_KIND_TAG_STORE,
                         arm_tag_memory_access_pc(cpu),
                         arm_tag_memory_access_lr(cpu), cpu->cs->cpu_index);
        }
        return true;
    }
    if (cpu->by == ARM_TAG_MEMORY_BY_QEMU ||
        cpu->by == ARM_TAG_MEMORY_BY_CPU_AGAIN) {
        /* The guest's read was counted and checked already */
        return true;
    }
    if (by_cpu) {
        stat64_add(&s->chk.tag_reads, 1);
    }
    for (i = 0; i < len; i++) {
        if (owner[i] == MTE_TAG_STORAGE_BYTE_DATA && by_cpu) {
            *verdict = report_violation(s,
                             MTE_TAG_STORAGE_RULE_TAG_READ_OF_DATA,
                             MAX(paddr, data_paddr(s, offset + i)),
                             s->carveout_base + offset + i, &a,
                             &s->chk.data_writer[(offset + i) >> GRANULE_BITS]);
            return true;
        }
        if (unwritten_random(s, owner[i])) {
            /* a debugger would show tags nobody set, too */
            *verdict = report_violation(s,
                             MTE_TAG_STORAGE_RULE_TAG_READ_OF_UNWRITTEN,
                             MAX(paddr, data_paddr(s, offset + i)),
                             s->carveout_base + offset + i, &a, NULL);
            return true;
        }
    }
    return true;
}

/*
 * A Tagged data access in the middle of a TB that reaches I/O memory makes
 * cpu_io_recompile() run that one instruction again; tag-only instructions
 * (LDG, STG, ...) are not run again.  So count every R3, and recognise the
 * replay: the next check on this CPU, at the end of a TB, same PC and
 * address.
 */
static bool r3_replayed(MTETagStorageState *s, const ARMTagMemoryAccess *cpu,
                        hwaddr paddr)
{
    vaddr pc = arm_tag_memory_access_pc(cpu);
    MTETagStorageCpuState *c;
    bool replay;

    QEMU_LOCK_GUARD(&s->chk.report_lock);
    c = cpu_state(s, cpu->cs);
    replay = !cpu->mid_tb && c->r3_pending && c->r3_pc == pc &&
             c->r3_paddr == paddr;
    c->r3_pending = cpu->mid_tb;
    c->r3_pc = pc;
    c->r3_paddr = paddr;
    return replay;
}

bool mte_tag_storage_tagged_carveout(MTETagStorageState *s,
                                     const ARMTagMemoryAccess *cpu,
                                     hwaddr paddr,
                                     ARMTagMemoryVerdict *verdict)
{
    MTETagStorageAccess a = { MTE_TAG_STORAGE_ACCESSOR_CPU, cpu };

    *verdict = ARM_TAG_MEMORY_GO_ON;
    if (!s->chk.owner || paddr < s->carveout_base ||
        paddr - s->carveout_base >= memory_region_size(&s->carveout)) {
        return false;
    }
    if (cpu->by != ARM_TAG_MEMORY_BY_CPU) {
        return true;  /* a debugger's or QEMU's probe */
    }
    if (cpu->ra && r3_replayed(s, cpu, paddr)) {
        return true;
    }
    mte_tag_storage_log_self_tagged(s, paddr);
    *verdict = report_violation(s,
                        MTE_TAG_STORAGE_RULE_TAGGED_ACCESS_TO_TAG_STORAGE,
                        paddr, paddr, &a, NULL);
    return true;
}

/*
 * Data accesses to the carveout while checking: the RAM is mapped through
 * these callbacks, which keep migration's dirty log up to date themselves.
 * A CPU access has specified attributes and runs on that CPU's thread, with
 * cpu->mem_io_pc locating the instruction; a debugger's has attrs.debug;
 * anything else is DMA.  Sets @cpu for a CPU access.
 */
static MTETagStorageAccessor data_accessor(MTETagStorageState *s,
                                           MemTxAttrs attrs,
                                           ARMTagMemoryAccess *cpu)
{
    CPUState *cs = current_cpu;

    if (attrs.debug) {
        return MTE_TAG_STORAGE_ACCESSOR_DEBUGGER;
    }
    if (!cs || attrs.unspecified || !s->map || !s->map->cpu_ops) {
        return MTE_TAG_STORAGE_ACCESSOR_DMA;
    }
    *cpu = (ARMTagMemoryAccess) {
        .cs = cs,
        .ra = cs->mem_io_pc,
        .cpu_ops = s->map->cpu_ops,
    };
    return MTE_TAG_STORAGE_ACCESSOR_CPU;
}

static MemTxResult checked_read(void *opaque, hwaddr addr, uint64_t *data,
                                unsigned size, MemTxAttrs attrs)
{
    MTETagStorageState *s = opaque;
    uint8_t *owner = s->chk.owner + addr;
    bool written = test_bit(addr >> OWNER_CHUNK_BITS, s->chk.owner_written) ||
                   test_bit((addr + size - 1) >> OWNER_CHUNK_BITS,
                            s->chk.owner_written);
    unsigned i;

    trace_mte_tag_storage_data_access(s->carveout_base + addr, size, false);
    if (!introspection(attrs)) {
        /* as for tag reads: a debugger's or a report's walk only looks */
        stat64_add(&s->chk.data_reads, 1);
    }
    if (!written && s->chk.owner_covers_ram) {
        /*
         * Nothing wrote here since reset: no owners, and zero RAM.  Touch
         * neither, or a dump of a large carveout makes both resident.
         */
        *data = 0;
        return MEMTX_OK;
    }
    for (i = 0; written && i < size; i++) {
        if (owner[i] == MTE_TAG_STORAGE_BYTE_TAG && !introspection(attrs)) {
            ARMTagMemoryAccess cpu;
            MTETagStorageAccess a = { data_accessor(s, attrs, &cpu) };

            a.cpu = a.kind == MTE_TAG_STORAGE_ACCESSOR_CPU ? &cpu : NULL;
            if (report_violation(s, MTE_TAG_STORAGE_RULE_DATA_READ_OF_TAGS,
                                 data_paddr(s, addr + i),
                                 s->carveout_base + addr + i, &a,
                                 &s->chk.tag_writer[(addr + i) >>
                                                    GRANULE_BITS]) ==
                ARM_TAG_MEMORY_STOP) {
                /* The CPU leaves for a debug stop before the load */
                cpu.cpu_ops->debug_stop(cpu.cs, cpu.ra);
            }
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
    ARMTagMemoryAccess cpu;

    trace_mte_tag_storage_data_access(s->carveout_base + addr, size, true);
    stat64_add(&s->chk.data_writes, 1);
    memset(s->chk.owner + addr, MTE_TAG_STORAGE_BYTE_DATA, size);
    owner_mark(s, addr, size);
    switch (data_accessor(s, attrs, &cpu)) {
    case MTE_TAG_STORAGE_ACCESSOR_DEBUGGER:
        record_write(s, s->chk.data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DEBUGGER, 0, 0, 0);
        break;
    case MTE_TAG_STORAGE_ACCESSOR_CPU:
        record_write(s, s->chk.data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DATA_STORE,
                     arm_tag_memory_access_pc(&cpu),
                     arm_tag_memory_access_lr(&cpu), cpu.cs->cpu_index);
        break;
    default:
        record_write(s, s->chk.data_writer, addr, size,
                     MTE_TAG_STORAGE_WRITER_KIND_DMA, 0, 0,
                     attrs.requester_id);
        break;
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

/*
 * The owner map is read only where it was written: reading untouched
 * anonymous memory still makes it resident, which for a 4 GiB map (a
 * 128 GiB guest) is what migration and queries must not do.
 */
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

/* The checker's part of realize: maps, and the carveout for data */
bool mte_tag_storage_check_realize(MTETagStorageState *s, uint64_t size,
                                   Error **errp)
{
    /* Data accesses go through checked_ops; tag accesses do not */
    s->chk.owner = owner_map_new(size, errp);
    if (!s->chk.owner) {
        return false;
    }
    s->chk.owner_size = size;
    /* A record per 16-byte granule */
    s->chk.tag_writer = (MTETagStorageWriterRecord *)
        owner_map_new(WRITER_MAP_SIZE(size), errp);
    s->chk.data_writer = s->chk.tag_writer ? (MTETagStorageWriterRecord *)
        owner_map_new(WRITER_MAP_SIZE(size), errp) : NULL;
    if (!s->chk.data_writer) {
        return false;
    }
    s->chk.owner_written = bitmap_new(size >> OWNER_CHUNK_BITS);
    memory_region_init_io(&s->checked, OBJECT(s), &checked_ops, s,
                          "mte-tag-storage.checked", size);
    /*
     * The callbacks never start I/O, and with check=stop they leave
     * through cpu_loop_exit(), which the re-entrancy guard would take
     * for an access still in progress.
     */
    s->checked.disable_reentrancy_guard = true;
    sysbus_init_mmio(SYS_BUS_DEVICE(s), &s->checked);
    return true;
}

/* The checker's part of a reset: no owners, no writers, no counts */
void mte_tag_storage_check_reset(MTETagStorageState *s)
{
    owner_map_clear(s->chk.owner, s->chk.owner_size);
    owner_map_clear((uint8_t *)s->chk.tag_writer,
                    WRITER_MAP_SIZE(s->chk.owner_size));
    owner_map_clear((uint8_t *)s->chk.data_writer,
                    WRITER_MAP_SIZE(s->chk.owner_size));
    bitmap_zero(s->chk.owner_written, s->chk.owner_size >> OWNER_CHUNK_BITS);
    s->chk.owner_covers_ram = !s->memdev &&
                          s->init != MTE_TAG_STORAGE_INIT_RANDOM;
    qatomic_set(&s->chk.write_seq, 0);
    stat64_set(&s->chk.tag_reads, 0);
    stat64_set(&s->chk.tag_writes, 0);
    stat64_set(&s->chk.data_reads, 0);
    stat64_set(&s->chk.data_writes, 0);
    for (int i = 0; i < MTE_TAG_STORAGE_RULE__MAX; i++) {
        stat64_set(&s->chk.violations[i], 0);
    }
    g_hash_table_remove_all(s->chk.cpu_state);
}

/* Free what mte_tag_storage_check_realize() allocated */
void mte_tag_storage_check_finalize(MTETagStorageState *s)
{
    if (s->chk.owner) {
        qemu_anon_ram_free(s->chk.owner, s->chk.owner_size);
    }
    if (s->chk.tag_writer) {
        qemu_anon_ram_free(s->chk.tag_writer,
                           WRITER_MAP_SIZE(s->chk.owner_size));
    }
    if (s->chk.data_writer) {
        qemu_anon_ram_free(s->chk.data_writer,
                           WRITER_MAP_SIZE(s->chk.owner_size));
    }
    g_free(s->chk.owner_written);
}

static bool check_needed(void *opaque)
{
    MTETagStorageState *s = opaque;

    return s->chk.owner != NULL;
}

static Stat64 *counter(MTETagStorageState *s, int i)
{
    Stat64 *rw[] = { &s->chk.tag_reads, &s->chk.tag_writes, &s->chk.data_reads,
                     &s->chk.data_writes };

    return i < ARRAY_SIZE(rw) ? rw[i] : &s->chk.violations[i - ARRAY_SIZE(rw)];
}

static int check_pre_save(void *opaque)
{
    MTETagStorageState *s = opaque;

    for (int i = 0; i < ARRAY_SIZE(s->chk.mig_counts); i++) {
        s->chk.mig_counts[i] = stat64_get(counter(s, i));
    }
    s->chk.mig_check = s->check;
    return 0;
}

static int check_pre_load(void *opaque)
{
    MTETagStorageState *s = opaque;

    QEMU_LOCK_GUARD(&s->chk.report_lock);
    g_hash_table_remove_all(s->chk.cpu_state);
    return 0;
}

static int check_post_load(void *opaque, int version_id)
{
    MTETagStorageState *s = opaque;

    for (int i = 0; i < ARRAY_SIZE(s->chk.mig_counts); i++) {
        stat64_set(counter(s, i), s->chk.mig_counts[i]);
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

static void writers_put(QEMUFile *f, const MTETagStorageWriterRecord *r,
                        uint64_t len)
{
    for (uint64_t i = 0; i < len >> GRANULE_BITS; i++) {
        qemu_put_be64(f, r[i].pc);
        qemu_put_be64(f, r[i].lr);
        qemu_put_be64(f, qatomic_read(&r[i].info));
    }
}

static int owners_put(QEMUFile *f, void *pv, size_t size,
                      const VMStateField *field, JSONWriter *vmdesc)
{
    MTETagStorageState *s = pv;

    qemu_put_be64(f, s->chk.owner_size);
    for (uint64_t off = 0; off < s->chk.owner_size; off += OWNERS_PAGE) {
        uint64_t len = MIN(OWNERS_PAGE, s->chk.owner_size - off);

        if (test_bit(off >> OWNER_CHUNK_BITS, s->chk.owner_written) &&
            !buffer_is_zero(s->chk.owner + off, len)) {
            qemu_put_be64(f, off);
            qemu_put_buffer(f, s->chk.owner + off, len);
            writers_put(f, s->chk.tag_writer + (off >> GRANULE_BITS), len);
            writers_put(f, s->chk.data_writer + (off >> GRANULE_BITS), len);
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
    s->chk.owner_covers_ram = false;
    return 0;
}

/*
 * The stream ended or failed: say where, once.  Reads at the end of a
 * stream return zeros, which are valid offsets, so every loop must ask.
 */
static int owners_stream_error(QEMUFile *f)
{
    int ret = qemu_file_get_error(f);

    if (ret) {
        error_report("mte-tag-storage: the migration stream ends or fails "
                     "inside the reuse checker's state (%s)", strerror(-ret));
    }
    return ret;
}

/* Load @len bytes' worth of writer records into @r, checking each */
static int writers_get(MTETagStorageState *s, QEMUFile *f,
                       MTETagStorageWriterRecord *r, uint64_t len,
                       uint64_t off)
{
    for (uint64_t i = 0; i < len >> GRANULE_BITS; i++) {
        uint64_t pc = qemu_get_be64(f), lr = qemu_get_be64(f);
        uint64_t info = qemu_get_be64(f);
        unsigned kind = (info >> WRITER_KIND_SHIFT) & WRITER_KIND_MASK;

        if (info && (kind == 0 || kind > MTE_TAG_STORAGE_WRITER_KIND__MAX ||
                     info >> WRITER_SEQ_SHIFT > s->chk.write_seq)) {
            error_report("mte-tag-storage: bad writer record 0x%" PRIx64
                         " for tag storage offset 0x%" PRIx64 " in the "
                         "migration stream", info, off + (i << GRANULE_BITS));
            return -EINVAL;
        }
        r[i].pc = pc;
        r[i].lr = lr;
        r[i].info = info;
    }
    return owners_stream_error(f);
}

static int owners_get(QEMUFile *f, void *pv, size_t size,
                      const VMStateField *field)
{
    MTETagStorageState *s = pv;
    uint64_t src_size = qemu_get_be64(f), off, next = 0, chunks = 0;
    int ret = owners_stream_error(f);

    if (ret) {
        return ret;
    }
    if (!s->chk.owner) {
        error_report("mte-tag-storage: the migration source runs "
                     "tag-storage-check=%s, this destination "
                     "tag-storage-check=off: use the same setting on both",
                     MTETagStorageCheck_str(s->chk.mig_check));
        return -EINVAL;
    }
    if (src_size != s->chk.owner_size) {
        error_report("mte-tag-storage: the migration source has 0x%" PRIx64
                     " bytes of tag storage, this destination 0x%" PRIx64
                     ": use the same -m and NUMA layout on both", src_size,
                     s->chk.owner_size);
        return -EINVAL;
    }
    owner_map_clear(s->chk.owner, s->chk.owner_size);
    owner_map_clear((uint8_t *)s->chk.tag_writer,
                    WRITER_MAP_SIZE(s->chk.owner_size));
    owner_map_clear((uint8_t *)s->chk.data_writer,
                    WRITER_MAP_SIZE(s->chk.owner_size));
    bitmap_zero(s->chk.owner_written, s->chk.owner_size >> OWNER_CHUNK_BITS);
    /* Chunks come in increasing order, so the loop ends within the map */
    while ((off = qemu_get_be64(f)) != OWNERS_END) {
        uint64_t len = MIN(OWNERS_PAGE, s->chk.owner_size - off);

        ret = owners_stream_error(f);
        if (ret) {
            return ret;
        }
        if (off % OWNERS_PAGE || off >= s->chk.owner_size || off < next) {
            error_report("mte-tag-storage: bad owner map offset 0x%" PRIx64
                         " in the migration stream", off);
            return -EINVAL;
        }
        next = off + OWNERS_PAGE;
        qemu_get_buffer(f, s->chk.owner + off, len);
        ret = owners_stream_error(f);
        if (ret) {
            return ret;
        }
        for (uint64_t i = 0; i < len; i++) {
            if (s->chk.owner[off + i] > MTE_TAG_STORAGE_BYTE_TAG) {
                error_report("mte-tag-storage: bad owner %u for tag storage "
                             "offset 0x%" PRIx64 " in the migration stream",
                             s->chk.owner[off + i], off + i);
                return -EINVAL;
            }
        }
        ret = writers_get(s, f, s->chk.tag_writer + (off >> GRANULE_BITS),
                          len, off);
        if (ret) {
            return ret;
        }
        ret = writers_get(s, f, s->chk.data_writer + (off >> GRANULE_BITS),
                          len, off);
        if (ret) {
            return ret;
        }
        set_bit(off >> OWNER_CHUNK_BITS, s->chk.owner_written);
        chunks++;
    }
    trace_mte_tag_storage_load_owners(s->carveout_base, chunks);
    return owners_stream_error(f);
}

/* The source's policy names it in errors: it must be one */
static bool mig_check_valid(void *opaque, int version_id)
{
    MTETagStorageState *s = opaque;

    if (s->chk.mig_check >= MTE_TAG_STORAGE_CHECK__MAX) {
        error_report("mte-tag-storage: bad tag-storage-check value %u in "
                     "the migration stream", s->chk.mig_check);
        return false;
    }
    return true;
}

static const VMStateInfo vmstate_info_owners = {
    .name = "mte-tag-storage-owners",
    .get = owners_get,
    .put = owners_put,
};

/* The checker's state: owners, writers and counts survive migration */
static const VMStateDescription vmstate_mte_tag_storage_check = {
    .name = "mte-tag-storage/check",
    /* 2: writer records carry the link register */
    .version_id = 2,
    .minimum_version_id = 2,
    .needed = check_needed,
    .pre_save = check_pre_save,
    .pre_load = check_pre_load,
    .post_load = check_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(chk.mig_check, MTETagStorageState),
        VMSTATE_VALIDATE("tag-storage-check policy", mig_check_valid),
        VMSTATE_UINT64_ARRAY(chk.mig_counts, MTETagStorageState,
                             4 + MTE_TAG_STORAGE_RULE__MAX),
        VMSTATE_UINT64(chk.write_seq, MTETagStorageState),
        {
            .name = "owners",
            .info = &vmstate_info_owners,
            .flags = VMS_SINGLE,
            .offset = 0,
        },
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_mte_tag_storage = {
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
