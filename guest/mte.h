/*
 * MTE from a Linux guest program: the uapi constants older headers lack,
 * tagged pointers and the tag instructions (A64 only).  Shared by /init
 * (mte-init.c), /smp-stress, /virtio-dma and /reuse-workload, so that
 * every program tags and checks memory the same way.
 *
 * Tags are the 4 bits at 56..59 of a pointer (TBI); with_tag() replaces
 * them, tag_of() reads them, ldg() reads a granule's allocation tag,
 * stg() sets it to the pointer's, irg() picks a random one (never an
 * excluded tag: set_tcf() excludes 0).  set_tcf() applies to the calling
 * thread only.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MTS_GUEST_MTE_H
#define MTS_GUEST_MTE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif
#ifndef SEGV_MTEAERR
#define SEGV_MTEAERR 8
#define SEGV_MTESERR 9
#endif
#ifndef PR_MTE_TCF_SYNC
#define PR_MTE_TCF_SYNC (1UL << 1)
#define PR_MTE_TCF_ASYNC (1UL << 2)
#define PR_MTE_TAG_SHIFT 3
#endif

#define PAGE 4096UL
#define GRANULE 16UL
#define ADDR_MASK ((1UL << 56) - 1)     /* a pointer without its tag */

static inline void *with_tag(void *p, unsigned tag)
{
    return (void *)(((uintptr_t)p & ADDR_MASK) |
                    ((uintptr_t)(tag & 15) << 56));
}

static inline unsigned tag_of(void *p)
{
    return ((uintptr_t)p >> 56) & 15;
}

static inline unsigned ldg(void *p)
{
    uintptr_t r = (uintptr_t)p;

    asm volatile("ldg %0, [%0]" : "+r"(r) :: "memory");
    return (r >> 56) & 15;
}

static inline void stg(void *p)
{
    asm volatile("stg %0, [%0]" :: "r"(p) : "memory");
}

static inline void *irg(void *p)
{
    void *r;

    asm volatile("irg %0, %1" : "=r"(r) : "r"(p));
    return r;
}

/* Tag checks of mode @tcf (PR_MTE_TCF_*) for the calling thread */
static inline int set_tcf(unsigned long tcf)
{
    return prctl(PR_SET_TAGGED_ADDR_CTRL, PR_TAGGED_ADDR_ENABLE | tcf |
                 (0xfffeUL << PR_MTE_TAG_SHIFT), 0, 0, 0);
}

/* Fresh anonymous PROT_MTE memory, or NULL */
static inline void *map_mte(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_MTE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

#endif
