/*
 * MTE tag storage carveout: query-mte-tag-storage and
 * "info mte-tag-storage".
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
#include "qapi/error.h"
#include "qapi/qapi-commands-misc-arm.h"
#include "qapi/type-helpers.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "qobject/qdict.h"
#include "mte-tag-storage-internal.h"

/* Who owns [@off, @off + @len) of @s's carveout; @len is whole chunks */
static MTETagStorageOwner block_owner(MTETagStorageState *s, uint64_t off,
                                      uint64_t len)
{
    bool data = false, tag = false;

    for (uint64_t c = off; c < off + len; c += 1 << OWNER_CHUNK_BITS) {
        const uint8_t *owner = s->chk.owner + c;

        if (test_bit(c >> OWNER_CHUNK_BITS, s->chk.owner_written)) {
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

/*
 * Runs of blocks that one query-mte-tag-storage reply holds at most, over
 * all regions: the reply is built under the BQL, and a carveout of 4 GiB
 * whose owners alternate would otherwise give a million runs.
 */
#define BLOCK_RUNS_MAX      4096

/*
 * The owners of the blocks of @s in [@base, @end), as runs, at most
 * *@budget of them (which is decreased).  If the budget runs out before
 * @end, *@next is the address of the first block not described.
 */
static MTETagStorageBlocksList *query_blocks(MTETagStorageState *s,
                                             hwaddr base, hwaddr end,
                                             unsigned *budget, bool *has_next,
                                             uint64_t *next)
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
        if (*budget == 0) {
            *has_next = true;
            *next = s->carveout_base + off;
            break;
        }
        (*budget)--;
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
                                s->chk.owner_written);

        t = written ? &s->chk.tag_writer[g] : &none;
        d = written ? &s->chk.data_writer[g] : &none;
        if (run && mte_tag_storage_writer_equal(t, prev_t) &&
            mte_tag_storage_writer_equal(d, prev_d)) {
            run->size += 1 << GRANULE_BITS;
        } else {
            run = g_new0(MTETagStorageGranules, 1);
            run->base = s->carveout_base + (g << GRANULE_BITS);
            run->size = 1 << GRANULE_BITS;
            run->tag_writer = mte_tag_storage_writer_info(t);
            run->data_writer = mte_tag_storage_writer_info(d);
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
    unsigned budget = BLOCK_RUNS_MAX;

    if (QTAILQ_EMPTY(&mte_tag_storages)) {
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

    s = QTAILQ_FIRST(&mte_tag_storages);
    info = g_new0(MTETagStorageInfo, 1);
    info->binding = s->binding;
    info->block_size = s->block_size;
    info->check = s->check;
    info->interleave = s->interleave;
    info->init = s->init;
    info->has_init_seed = s->init == MTE_TAG_STORAGE_INIT_RANDOM;
    info->init_seed = s->init_seed;
    tail = &info->regions;
    QTAILQ_FOREACH(s, &mte_tag_storages, next) {
        MTETagStorageRegion *r = g_new0(MTETagStorageRegion, 1);
        MTETagStorageViolations *v;
        hwaddr cbase = s->carveout_base;
        hwaddr cend = cbase + memory_region_size(&s->carveout);

        r->tagged_base = s->tagged_base;
        r->tagged_size = s->tagged_size;
        r->carveout_base = cbase;
        r->carveout_size = cend - cbase;
        r->tag_reads = stat64_get(&s->chk.tag_reads);
        r->tag_writes = stat64_get(&s->chk.tag_writes);
        r->data_reads = stat64_get(&s->chk.data_reads);
        r->data_writes = stat64_get(&s->chk.data_writes);
        r->violations = v = g_new0(MTETagStorageViolations, 1);
        v->tag_read_of_data = stat64_get(&s->chk.violations[0]);
        v->data_read_of_tags = stat64_get(&s->chk.violations[1]);
        v->tagged_access_to_tag_storage = stat64_get(&s->chk.violations[2]);
        v->tag_read_of_unwritten = stat64_get(&s->chk.violations[3]);
        if (s->chk.owner && base < cend && end > cbase) {
            r->blocks = query_blocks(s, base, end, &budget,
                                     &r->has_blocks_next, &r->blocks_next);
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
                       " R3 %" PRIu64 " R4 %" PRIu64 "\n",
                       v->violations->tag_read_of_data,
                       v->violations->data_read_of_tags,
                       v->violations->tagged_access_to_tag_storage,
                       v->violations->tag_read_of_unwritten);
        for (b = v->blocks; b; b = b->next) {
            monitor_printf(mon, "  0x%" PRIx64 "-0x%" PRIx64 " %s\n",
                           b->value->base,
                           b->value->base + b->value->size - 1,
                           MTETagStorageOwner_str(b->value->owner));
        }
        if (v->has_blocks_next) {
            monitor_printf(mon, "  more blocks from 0x%" PRIx64
                           ": info mte-tag-storage 0x%" PRIx64 "\n",
                           v->blocks_next, v->blocks_next);
        }
        for (g = v->writers; g; g = g->next) {
            MTETagStorageGranules *run = g->value;
            g_autofree char *tw = mte_tag_storage_writer_text(run->tag_writer);
            g_autofree char *dw = mte_tag_storage_writer_text(run->data_writer);

            monitor_printf(mon, "  0x%" PRIx64 "-0x%" PRIx64 " tags: %s;"
                           " data: %s\n", run->base,
                           run->base + run->size - 1, tw, dw);
        }
    }
}
