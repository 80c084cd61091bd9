/*
 * Minimal EL1 runtime for the mte-tag-storage bare-metal tests:
 * stack, exception vectors that call into C, then main(); entered at
 * EL3 (secure=on), it drops to Secure EL1 first.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

    .section .text.start, "ax"
    .global _start
_start:
    /*
     * With -M secure=on an ELF starts at EL3: continue at Secure EL1,
     * AArch64, with tag accesses allowed, so that the program can tag
     * secure memory too.
     */
    mrs     x0, CurrentEL
    cmp     x0, #(3 << 2)
    b.ne    el1
    mov     x0, #(1 << 10)          /* SCR_EL3.RW; NS = 0 */
    orr     x0, x0, #(1 << 26)      /* SCR_EL3.ATA */
    msr     scr_el3, x0
    mov     x0, #0x3c5              /* EL1h, DAIF masked */
    msr     spsr_el3, x0
    adr     x0, el1
    msr     elr_el3, x0
    isb
    eret
el1:
    ldr     x0, =stack_top
    mov     sp, x0
    adr     x0, vectors
    msr     vbar_el1, x0
    isb
    bl      main
1:  wfi
    b       1b

/* CPU 1, started by PSCI CPU_ON at EL1 with the MMU off */
    .global secondary_entry
secondary_entry:
    ldr     x0, =stack2_top
    mov     sp, x0
    adr     x0, vectors
    msr     vbar_el1, x0
    isb
    bl      smp_secondary
1:  wfi
    b       1b

/* Save the caller-saved registers, call exc_handler(esr, far, elr, type, lr) */
.macro vector type
    .balign 0x80
    sub     sp, sp, #(24 * 8)
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]       /* before x3 carries the type */
    mov     x3, #\type
    b       exc_common
.endm

    .balign 0x800
vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4       /* current EL, SPx, synchronous */
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15

exc_common:
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    mrs     x0, esr_el1
    mrs     x1, far_el1
    mrs     x2, elr_el1
    ldr     x4, [sp, #160]          /* the interrupted code's x30 */
    bl      exc_handler
    msr     elr_el1, x0
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #(24 * 8)
    eret
