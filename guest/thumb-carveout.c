/*
 * /thumb-carveout and /a64-carveout of the Linux test guest: data stores
 * and loads to the tag storage carveout from an AArch32 Thumb-2 process
 * (a compat task of the arm64 kernel) and from an A64 process at once.
 * Both are built from this file by build-initramfs.sh (arm-linux-gnueabihf
 * -gcc -mthumb, aarch64-linux-gnu-gcc); /init (mte-init.c) starts them
 * for mts.thumb, guest/tests/thumb.sh runs that.
 *
 * Usage: /thumb-carveout SLOT NSLOTS (the same for /a64-carveout)
 *   The workers share a window of NSLOTS * 64 KiB at the end of the
 *   carveout (binding v1 or v2: outside RAM, so /dev/mem maps it); worker
 *   SLOT uses every NSLOTS-th page of it, so the workers' pages
 *   interleave.  Nothing tags the RAM whose tags would be there, so to the
 *   reuse checker each byte is unwritten, then data: no access breaks a
 *   rule.
 *
 * The workload: a pseudo-random mix of byte, halfword and word stores and
 * loads, short copy loops with data-dependent branches, and conditional
 * stores inside IT blocks (Thumb), each step called through a table of
 * functions (indirect calls and interworking returns end translation
 * blocks), with a system call every 1024 steps (an exception return with
 * the process's PSTATE).  So a lot of translation blocks run, and the
 * Thumb and IT state must survive every carveout access: QEMU's reuse
 * checker looks for the PC of each data store with cpu_restore_state(),
 * which must not disturb them.  The workload runs over ordinary memory
 * first, then over the carveout; the checksums of what it loads and the
 * final contents must agree.  It does not depend on the ISA nor on the
 * slot: all workers print the same checksum.
 *
 * Output: "ok ISA-carveout slot=S checksum=0x... accesses=N stores=M"
 * (the carveout accesses: N, of which M stores) or "not ok ISA-carveout
 * slot=S <why>"; exit status 0 when ok.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64    /* the carveout lies above 2 GiB */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "carveout.h"

#if defined(__thumb2__)
#define ISA "thumb"
#elif defined(__aarch64__)
#define ISA "a64"
#else
#error "build for A64, or for AArch32 with -mthumb (Thumb-2)"
#endif

#define PAGE 4096u
#define WINDOW 0x10000u                 /* each worker's bytes */
#define PAGES (WINDOW / PAGE)
#define ROUNDS 100000
#define SEED 0x2545f491u
#define TIME_LIMIT 90                   /* seconds: a hang fails, too */

typedef struct Region {
    volatile uint8_t *page[PAGES];      /* volatile: Device memory */
    uint32_t loads, stores;
} Region;

static volatile uint8_t *at(Region *r, uint32_t off)
{
    off %= WINDOW;
    return r->page[off / PAGE] + off % PAGE;
}

static uint32_t ld8(Region *r, uint32_t off)
{
    r->loads++;
    return *at(r, off);
}

static uint32_t ld16(Region *r, uint32_t off)
{
    r->loads++;
    return *(volatile uint16_t *)at(r, off & ~1u);
}

static uint32_t ld32(Region *r, uint32_t off)
{
    r->loads++;
    return *(volatile uint32_t *)at(r, off & ~3u);
}

static void st8(Region *r, uint32_t off, uint32_t v)
{
    r->stores++;
    *at(r, off) = v;
}

static void st16(Region *r, uint32_t off, uint32_t v)
{
    r->stores++;
    *(volatile uint16_t *)at(r, off & ~1u) = v;
}

static void st32(Region *r, uint32_t off, uint32_t v)
{
    r->stores++;
    *(volatile uint32_t *)at(r, off & ~3u) = v;
}

/* ---- the steps: each gets the random word x, its offset is x >> 16 ---- */

static uint32_t op_st8(Region *r, uint32_t x)
{
    st8(r, x >> 16, x >> 8);
    return 1;
}

static uint32_t op_st16(Region *r, uint32_t x)
{
    st16(r, x >> 16, x);
    return 2;
}

static uint32_t op_st32(Region *r, uint32_t x)
{
    st32(r, x >> 16, x * 0x9e3779b9u);
    return 3;
}

static uint32_t op_ld8(Region *r, uint32_t x)
{
    return ld8(r, x >> 16);
}

static uint32_t op_ld16(Region *r, uint32_t x)
{
    return ld16(r, x >> 16);
}

static uint32_t op_ld32(Region *r, uint32_t x)
{
    return ld32(r, x >> 16);
}

/* a short copy loop, with a branch on each byte copied */
static uint32_t op_copy(Region *r, uint32_t x)
{
    uint32_t src = x >> 16, dst = src + 0x1000 + (x & 0xff0);
    uint32_t n = 4 + (x >> 4 & 7), sum = 0;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = ld8(r, src + i);

        if (v & 1) {
            st8(r, dst + i, v + 1);
        } else {
            st8(r, dst + i, v ^ 0x5a);
        }
        sum = sum * 31 + v;
    }
    return sum;
}

/*
 * A store inside an IT block: when QEMU looks for its PC it restores the
 * IT state of the store too, which the rest of the translation block does
 * not rewrite; the instructions after the block must run unconditionally.
 */
static uint32_t op_cond(Region *r, uint32_t x)
{
    volatile uint8_t *p = at(r, x >> 16);
    volatile uint16_t *q = (volatile uint16_t *)at(r, x >> 16 & ~1u);
    uint32_t v = x >> 3, n = 0;

#ifdef __thumb2__
    asm volatile("tst %[x], #0x100\n\t"
                 "itte ne\n\t"
                 "strbne %[v], [%[p]]\n\t"
                 "addne %[n], %[n], #1\n\t"
                 "strheq %[v], [%[q]]\n\t"
                 "add %[n], %[n], #2\n\t"
                 : [n] "+r"(n)
                 : [x] "r"(x), [v] "r"(v), [p] "r"(p), [q] "r"(q)
                 : "cc", "memory");
#else
    if (x & 0x100) {
        *p = v;
        n++;
    } else {
        *q = v;
    }
    n += 2;
#endif
    r->stores++;
    return n;
}

static uint32_t (*const ops[8])(Region *, uint32_t) = {
    op_st8, op_st16, op_st32, op_ld8, op_ld16, op_ld32, op_copy, op_cond,
};

static uint32_t workload(Region *r)
{
    uint32_t x = SEED, sum = 0;

    /* a known start: the carveout holds what an earlier run left there */
    for (uint32_t off = 0; off < WINDOW; off += 4) {
        st32(r, off, off * 0x01000193u);
    }
    for (uint32_t i = 0; i < ROUNDS; i++) {
        x ^= x << 13;           /* xorshift32: the same sequence on any ISA */
        x ^= x >> 17;
        x ^= x << 5;
        sum = (sum << 5 | sum >> 27) ^ ops[x & 7](r, x);
        if (i % 1024 == 0) {
            getppid();
        }
    }
    return sum;
}

static unsigned my_slot;

/*
 * A fatal signal: say where, and in which state (a Thumb-2 program found
 * in A32 state lost PSTATE.T), then die of it (SA_RESETHAND: the faulting
 * instruction runs again, /init sees the signal).
 */
static void on_fatal(int sig, siginfo_t *si, void *ctx)
{
    mcontext_t *mc = &((ucontext_t *)ctx)->uc_mcontext;
    char msg[160];
#ifdef __thumb2__
    unsigned long pc = mc->arm_pc, psr = mc->arm_cpsr;
    const char *state = psr & 0x20 ? "T32" : "A32, not Thumb";
#else
    unsigned long pc = mc->pc, psr = mc->pstate;
    const char *state = "A64";
#endif

    snprintf(msg, sizeof(msg), "not ok " ISA "-carveout slot=%u signal %d "
             "(%s) at pc 0x%lx, addr %p, psr 0x%lx (%s)\n", my_slot, sig,
             sig == SIGILL ? "SIGILL" : sig == SIGSEGV ? "SIGSEGV" :
             sig == SIGBUS ? "SIGBUS" : "?", pc, si->si_addr, psr, state);
    write(1, msg, strlen(msg));
}

int main(int argc, char **argv)
{
    struct sigaction sa = {
        .sa_sigaction = on_fatal, .sa_flags = SA_SIGINFO | SA_RESETHAND,
    };
    static uint8_t plain[WINDOW] __attribute__((aligned(PAGE)));
    Region ref = { 0 }, ts_region = { 0 };
    TagStorage ts = { 0 };
    unsigned slot, nslots;
    uint32_t want, got, off;
    uint64_t window;
    uint8_t *map;

    if (argc != 3 || sscanf(argv[1], "%u", &slot) != 1 ||
        sscanf(argv[2], "%u", &nslots) != 1 || slot >= nslots) {
        fprintf(stderr, "usage: %s SLOT NSLOTS\n", argv[0]);
        return 2;
    }
    my_slot = slot;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    alarm(TIME_LIMIT);
#ifdef __thumb2__
    /* interworking addresses of Thumb code have bit 0 set */
    if (!((uintptr_t)op_st8 & 1)) {
        printf("not ok " ISA "-carveout slot=%u built as A32, not Thumb\n",
               slot);
        return 1;
    }
#endif
    if (!find_tag_storage("/proc/device-tree", &ts) ||
        ts.size < (uint64_t)nslots * WINDOW) {
        printf("not ok " ISA "-carveout slot=%u no carveout outside RAM "
               "(binding v1 or v2) in the device tree\n", slot);
        return 1;
    }
    window = ts.base + ts.size - (uint64_t)nslots * WINDOW;
    map = carveout_map(window, (size_t)nslots * WINDOW);
    if (!map) {
        printf("not ok " ISA "-carveout slot=%u cannot map 0x%llx through "
               "/dev/mem\n", slot, (unsigned long long)window);
        return 1;
    }
    for (unsigned i = 0; i < PAGES; i++) {
        ref.page[i] = plain + i * PAGE;
        ts_region.page[i] = map + (i * nslots + slot) * PAGE;
    }
    printf("# " ISA "-carveout slot=%u: pages of 0x%llx+0x%x, every %uth "
           "from 0x%llx\n", slot, (unsigned long long)window,
           nslots * WINDOW, nslots,
           (unsigned long long)window + slot * PAGE);
    fflush(stdout);

    want = workload(&ref);
    got = workload(&ts_region);
    for (off = 0; off < WINDOW; off += 4) {
        if (ld32(&ts_region, off) != ld32(&ref, off)) {
            break;
        }
    }
    if (got != want || off < WINDOW) {
        printf("not ok " ISA "-carveout slot=%u checksum=0x%08x expected "
               "0x%08x, %s at 0x%x\n", slot, got, want,
               off < WINDOW ? "contents differ" : "contents agree",
               off % WINDOW);
        return 1;
    }
    printf("ok " ISA "-carveout slot=%u checksum=0x%08x accesses=%u "
           "stores=%u\n", slot, got, ts_region.loads + ts_region.stores,
           ts_region.stores);
    return 0;
}
