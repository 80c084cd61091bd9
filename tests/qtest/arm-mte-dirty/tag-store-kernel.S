/*
 * Bare-metal guest for arm-mte-dirty-test: store allocation tag 0 in
 * each page of the tags of TAG_STORE_START..TAG_STORE_END, forever, with
 * STG (mode 0) or STGM (mode 1), or store no tag at all (mode 2), the
 * mode being read from TAG_STORE_MODE at start.  It makes
 * no other store to memory after its page table is in place, so any page
 * that the dirty log sees dirty afterwards is tag memory.
 *
 * Runs at EL1 from -kernel (loaded as a raw image).  All code is
 * position independent.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "tag-store-kernel-layout.h"

        .arch   armv8.5-a+memtag
        .text
        .globl  _start
_start:
        /* MAIR_EL1 Attr0: Tagged Normal, write-back */
        mov     x0, #0xf0
        msr     mair_el1, x0

        /* One level 1 table entry: a 1 GiB block for RAM at 1 GiB */
        mov     x1, #TAG_STORE_PGTABLE
        mov     x0, #0x701              /* block, AttrIndx 0, SH inner, AF */
        movk    x0, #0x4000, lsl #16
        str     x0, [x1, #8]
        msr     ttbr0_el1, x1

        /*
         * TCR_EL1: T0SZ 25 (level 1 start), inner/outer write-back,
         * inner shareable, 4 KiB granule, EPD1, IPS 40 bits
         */
        movz    x0, #0x3519
        movk    x0, #0x0080, lsl #16
        movk    x0, #0x0002, lsl #32
        msr     tcr_el1, x0
        isb

        /* SCTLR_EL1: MMU, caches and tag access (ATA) on */
        mrs     x0, sctlr_el1
        orr     x0, x0, #(1 << 0)
        orr     x0, x0, #(1 << 2)
        orr     x0, x0, #(1 << 12)
        orr     x0, x0, #(1 << 43)
        msr     sctlr_el1, x0
        isb

        /*
         * One tag store for every page of tags: 4 KiB of tags cover
         * 128 KiB of data.  Each pass then takes microseconds, so that
         * whenever migration looks, all the tag pages are dirty again.
         */
        mov     x3, #0x20000

        mov     x9, #TAG_STORE_MODE
        ldr     w6, [x9]
        cmp     w6, #2
        b.eq    idle
        /*
         * Store tag 0 (STG takes it from bits 59:56 of x7, STGM from x5):
         * the tag pages stay zero, so migration resends them cheaply.
         */
        mov     x5, #0
        mov     x7, #0
pass:
        mov     x0, #TAG_STORE_START
        mov     x1, #TAG_STORE_END
        cbz     w6, stg_loop
stgm_loop:
        stgm    x5, [x0]
        add     x0, x0, x3
        cmp     x0, x1
        b.lo    stgm_loop
        b       next
stg_loop:
        stg     x7, [x0]
        add     x0, x0, x3
        cmp     x0, x1
        b.lo    stg_loop
next:
        b       pass
idle:
        b       idle
