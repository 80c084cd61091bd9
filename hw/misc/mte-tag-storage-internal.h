/*
 * MTE tag storage carveout: the device's state and the interfaces between
 * its files (mte-tag-storage.c: the device, layout, device tree and
 * reset; mte-tag-storage-check.c: the reuse checker;
 * mte-tag-storage-info.c: QMP and HMP).  Boards and the MTE helpers use
 * include/hw/misc/mte-tag-storage.h only: the state is opaque to them.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_MTE_TAG_STORAGE_INTERNAL_H
#define HW_MISC_MTE_TAG_STORAGE_INTERNAL_H

#include "hw/misc/mte-tag-storage.h"
#include "hw/sysbus.h"
#include "qapi/qapi-types-misc-arm.h"
#include "qemu/queue.h"
#include "qemu/stats64.h"
#include "qemu/thread.h"

/*
 * The last write of one kind (tags or data) to a 16-byte granule of the
 * carveout.  Written without a lock: two CPUs racing on one granule may
 * leave a record that mixes their writes, but the guest has a race there
 * anyway.  24 bytes per granule and kind: each map is 1.5 times the
 * carveout, and like the owner map costs only the pages written.
 */
typedef struct MTETagStorageWriterRecord {
    uint64_t pc;             /* CPU writes: the instruction's address */
    uint64_t lr;             /* CPU writes: the link register, its caller */
    uint64_t info;           /* 0: none since reset, else WRITER_* fields */
} MTETagStorageWriterRecord;

/* Bytes of writer records for @size bytes of tag storage */
#define WRITER_MAP_SIZE(size) \
    (((size) >> GRANULE_BITS) * sizeof(MTETagStorageWriterRecord))

/* Return addresses a report gives of the accessor's call chain */
#define MTE_TAG_STORAGE_BACKTRACE_DEPTH 16

/* A granule of tag storage: the tags of 32 granules of tagged RAM */
#define GRANULE_BITS        4

/*
 * The owner map is read only where it was written: reading untouched
 * anonymous memory still makes it resident, which for a 4 GiB map (a
 * 128 GiB guest) is what migration and queries must not do.
 */
#define OWNER_CHUNK_BITS 12

/*
 * The reuse checker's state (mte-tag-storage-check.c), used when check
 * is not MTE_TAG_STORAGE_CHECK_OFF: owner is then not NULL.
 */
typedef struct MTETagStorageChecker {
    uint8_t *owner;          /* MTETagStorageByteOwner per carveout byte, */
    uint64_t owner_size;     /* anonymous memory: untouched pages cost none */
    /* last tag and data writes per 16-byte granule, anonymous memory too */
    MTETagStorageWriterRecord *tag_writer, *data_writer;
    uint64_t write_seq;      /* writes since reset, atomic */
    unsigned long *owner_written;  /* a bit per 4 KiB of owner map: written */
    bool owner_covers_ram;   /* no carveout page is non-zero but unwritten */
    Stat64 tag_reads, tag_writes, data_reads, data_writes;
    Stat64 violations[MTE_TAG_STORAGE_RULE__MAX];
    uint64_t mig_counts[4 + MTE_TAG_STORAGE_RULE__MAX];  /* for vmstate */
    uint8_t mig_check;       /* the migration source's check policy */
    QemuMutex report_lock;   /* protects the fields below */
    int64_t report_window;   /* start of the rate limit window, ms */
    uint32_t reports_in_window;
    uint32_t reports_suppressed;
    GHashTable *cpu_state;   /* cpu_index -> MTETagStorageCpuState */
} MTETagStorageChecker;

struct MTETagStorageState {
    SysBusDevice parent_obj;

    MemoryRegion carveout;   /* the tag storage: RAM, or alias of memdev */
    MemoryRegion *ram;       /* the RAM region holding it ... */
    hwaddr ram_offset;       /* ... from this offset */
    MemoryRegion checked;    /* the carveout as seen by data accesses */
    MemoryRegion tag_alias;  /* the carveout, seen from the tag space */
    MemoryRegion self_tags;  /* tags of the carveout itself: none */
    unsigned long *self_tag_reported;  /* carveout pages already logged */
    bool ran;                /* past the reset that creates the machine */
    const ARMTagMemoryMap *map;  /* the board's: the CPUs' ops, for data */
    QTAILQ_ENTRY(MTETagStorageState) next;

    /* the reuse checker, when check is not off */
    MTETagStorageChecker chk;

    /* properties */
    uint64_t tagged_base;
    uint64_t tagged_size;
    uint64_t carveout_base;
    uint32_t block_size;
    int binding;             /* MTETagStorageBinding */
    int check;               /* MTETagStorageCheck */
    int init;                /* MTETagStorageInit */
    uint64_t init_seed;      /* for init=random */
    bool interleave;         /* blocks permuted, see interleave_bits */
    unsigned interleave_bits;
    int32_t node;            /* NUMA node, for the device tree; -1: none */
    HostMemoryBackend *memdev;  /* the carveout's RAM, if not our own */
    uint64_t memdev_offset;
};

/* Who last wrote a carveout byte, for the reuse checker */
typedef enum MTETagStorageByteOwner {
    MTE_TAG_STORAGE_BYTE_UNWRITTEN = 0,  /* zero since reset: data and tag */
    MTE_TAG_STORAGE_BYTE_DATA = 1,
    MTE_TAG_STORAGE_BYTE_TAG = 2,
} MTETagStorageByteOwner;

/* Reports (log lines, events) per second; the counters count them all */
#define MTE_TAG_STORAGE_REPORTS_PER_SEC 20

/* Every realized tag storage, in realize order, for the monitor */
typedef QTAILQ_HEAD(MTETagStorageList, MTETagStorageState) MTETagStorageList;
extern MTETagStorageList mte_tag_storages;

/*
 * Is the tag byte at @offset in @mr @s's?  If so @offset becomes its own.
 * On the path of every tag access while the checker runs.
 */
static inline bool mte_tag_storage_owns(MTETagStorageState *s,
                                        MemoryRegion *mr, hwaddr *offset)
{
    if (mr == s->ram && *offset - s->ram_offset <
                        mte_tag_storage_carveout_size(s->tagged_size)) {
        *offset -= s->ram_offset;
        return true;
    }
    return false;
}

/* Log a Tagged access to @s's carveout at @paddr, once per page */
void mte_tag_storage_log_self_tagged(MTETagStorageState *s, hwaddr paddr);

/*
 * The reuse checker (mte-tag-storage-check.c), used when s->check is not
 * MTE_TAG_STORAGE_CHECK_OFF: its part of realize (which maps the
 * carveout as sysbus MMIO region 0 for data accesses), of a reset after
 * the first one, and of finalize.
 */
bool mte_tag_storage_check_realize(MTETagStorageState *s, uint64_t size,
                                   Error **errp);
void mte_tag_storage_check_reset(MTETagStorageState *s);
void mte_tag_storage_check_finalize(MTETagStorageState *s);

/* The device's migration state: the checker's owners, writers, counts */
extern const VMStateDescription vmstate_mte_tag_storage;

/* A writer record as QAPI (NULL if nothing wrote), compared, as text */
MTETagStorageWriter *
mte_tag_storage_writer_info(const MTETagStorageWriterRecord *r);
bool mte_tag_storage_writer_equal(const MTETagStorageWriterRecord *a,
                                  const MTETagStorageWriterRecord *b);
char *mte_tag_storage_writer_text(const MTETagStorageWriter *w);

#endif
