/*
 * Guest physical layout shared by tag-store-kernel.S and
 * arm-mte-dirty-test.c.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TAG_STORE_KERNEL_LAYOUT_H
#define TAG_STORE_KERNEL_LAYOUT_H

/* Level 1 translation table, written by the guest (RAM is zeroed) */
#define TAG_STORE_PGTABLE       0x40200000
/* 32-bit word: 0 to store tags with STG, 1 with STGM */
#define TAG_STORE_MODE          0x40300000
/* Data whose tags are stored: 64 MiB, so 2 MiB of tags */
#define TAG_STORE_START         0x44000000
#define TAG_STORE_END           0x48000000

#endif
