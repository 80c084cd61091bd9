/*
 * Bare-metal MTE test for -M virt,mte=on[,tag-storage=on].
 *
 * Exercises every instruction that reads or writes allocation tags, and
 * tag checks, and verifies the results with LDG.  When the host says tag
 * storage is on (mailbox below), it also verifies them in the carveout
 * bytes themselves, the aliasing in both directions, translated code
 * invalidation by tag stores, and Tagged access to the carveout.
 *
 * Output, over the PL011: one "ok <name>" or "not ok <name>" line per
 * check, then "RESULT pass=<n> fail=<n>" and "END".
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include <stddef.h>

#define UART_DR         ((volatile uint32_t *)0x09000000) /* MMIO */
#define UART_FR         ((volatile uint32_t *)0x09000018) /* MMIO */
#define UART_CR         ((volatile uint32_t *)0x09000030) /* MMIO */

/*
 * Mailbox written by the host (the qtest) before the CPU starts, after
 * the image (QEMU puts the DTB at the start of RAM).
 * [0] MAILBOX_MAGIC | flags, [1] tagged RAM base, [2] tagged RAM size,
 * [3] carveout base, [4] stage reached by the guest, [5] stage acked,
 * [6] PC of the access that the host is to expect a report for,
 * [7] set by the host when it restored a snapshot (FLAG_PERSIST) or reset
 * the machine (FLAG_RESET), [8] the tag storage block size with
 * FLAG_INTERLEAVE, [9] PC of the access before [6] in a stage with two,
 * [10] PC of the write that the report is to name as the culprit.
 */
#define MAILBOX         ((volatile uint64_t *)0x40400000) /* host-written */
#define MAILBOX_MAGIC   0x4d54532d54450000ull /* "MTS-TE", 16 bits of flags */
#define FLAG_TAG_STORAGE 1
#define FLAG_HOST       2   /* a qtest serves host_stage() */
#define FLAG_GDB        4   /* only run the scenario for the gdb test */
#define FLAG_BENCH      8   /* run benchmark MAILBOX[4], MAILBOX[5] passes */
#define FLAG_CHECK      16  /* only run the reuse checker scenario */
#define FLAG_RANDOM     32  /* randomized test: MAILBOX[4] seed, [5] ops */
#define FLAG_PERSIST    64  /* tags across savevm/loadvm and migration */
#define FLAG_RESET      128 /* tags set, then the host resets the machine */
#define FLAG_INTERLEAVE 256 /* tag-storage-interleave=on, block MAILBOX[8] */
#define FLAG_SECURE     512 /* -M secure=on: we run at Secure EL1 */
#define FLAG_R4         1024 /* tag reads of unwritten tag storage */
#define FLAG_SMP        2048 /* -smp 2: culprits on the other CPU */
#define FLAG_FAULT_STOP 4096 /* one tag check fault, variant MAILBOX[4] */

#define GRANULE         16
#define PAGE            4096
#define TAG_SHIFT       56
#define ADDR_MASK       ((1ull << TAG_SHIFT) - 1)

static uint64_t ram_base, ram_size, carveout;
static int tag_storage;
static int passes, failures;

/* ---- output ---- */

static void putc_uart(char c)
{
    while (*UART_FR & (1 << 5)) {
        /* TX FIFO full */
    }
    *UART_DR = c;
}

static void puts_uart(const char *s)
{
    while (*s) {
        putc_uart(*s++);
    }
}

static void put_hex(uint64_t v)
{
    puts_uart("0x");
    for (int i = 60; i >= 0; i -= 4) {
        putc_uart("0123456789abcdef"[(v >> i) & 0xf]);
    }
}

static void put_dec(uint64_t v)
{
    char buf[24];
    int i = 0;

    do {
        buf[i++] = '0' + v % 10;
        v /= 10;
    } while (v);
    while (i) {
        putc_uart(buf[--i]);
    }
}

static void check(const char *name, int ok)
{
    puts_uart(ok ? "ok " : "not ok ");
    puts_uart(name);
    puts_uart("\n");
    if (ok) {
        passes++;
    } else {
        failures++;
    }
}

static void check_eq(const char *name, uint64_t got, uint64_t want)
{
    if (got != want) {
        puts_uart("# ");
        puts_uart(name);
        puts_uart(": got ");
        put_hex(got);
        puts_uart(" want ");
        put_hex(want);
        puts_uart("\n");
    }
    check(name, got == want);
}

/* ---- exceptions ---- */

static volatile int expect_fault;       /* shared with exc_handler */
static volatile int fault_count;        /* updated by exc_handler */
static volatile uint64_t fault_esr, fault_far;  /* from exc_handler */

static volatile int expect_undef;       /* see test_after_reset() */

uint64_t exc_handler(uint64_t esr, uint64_t far, uint64_t elr, uint64_t type,
                     uint64_t lr)
{
    if (type == 4 && expect_undef && (esr >> 26) == 0) {
        /* an undefined instruction in a called function: return from it */
        expect_undef = 0;
        fault_esr = esr;
        return lr;
    }
    if (type == 4 && expect_fault) {
        expect_fault = 0;
        fault_esr = esr;
        fault_far = far;
        fault_count++;
        return elr + 4;         /* skip the faulting instruction */
    }
    puts_uart("not ok unexpected-exception type=");
    put_dec(type);
    puts_uart(" esr=");
    put_hex(esr);
    puts_uart(" far=");
    put_hex(far);
    puts_uart(" elr=");
    put_hex(elr);
    puts_uart("\nRESULT pass=0 fail=1\nEND\n");
    for (;;) {
        asm volatile("wfi");
    }
}

/* ---- MMU: identity map with Tagged RAM ---- */

#define ATTR_DEVICE     0   /* MAIR attr0: Device-nGnRnE */
#define ATTR_TAGGED     1   /* MAIR attr1: Tagged Normal WB */
#define ATTR_NORMAL     2   /* MAIR attr2: Normal WB, untagged */
#define DESC_BLOCK      1
#define DESC_TABLE      3
#define DESC_AF         (1ull << 10)
#define DESC_ISH        (3ull << 8)
#define DESC_XN         (3ull << 53)
#define ALIAS_VA        0x80000000ull   /* Tagged view of PA 1G..2G */
#define SECURE_RAM      0x0e000000ull   /* virt's secure RAM, 16 MiB */
#define SECURE_RAM_SIZE 0x01000000ull

static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l2_low[512] __attribute__((aligned(4096)));
static uint64_t l2[512] __attribute__((aligned(4096)));

static uint64_t block(uint64_t pa, int attr)
{
    uint64_t d = pa | DESC_BLOCK | DESC_AF | (attr << 2);

    return attr == ATTR_DEVICE ? d | DESC_XN : d | DESC_ISH;
}

static void mmu_tables(void)
{
    /* the first GiB is devices, but for virt's secure RAM (Tagged) */
    for (int i = 0; i < 512; i++) {
        uint64_t pa = i * 0x200000ull;
        int secure_ram = (MAILBOX[0] & FLAG_SECURE) && pa >= SECURE_RAM &&
                         pa < SECURE_RAM + SECURE_RAM_SIZE;

        l2_low[i] = block(pa, secure_ram ? ATTR_TAGGED : ATTR_DEVICE);
    }
    l1[0] = (uint64_t)l2_low | DESC_TABLE;
    l1[1] = (uint64_t)l2 | DESC_TABLE;
    for (int i = 0; i < 512; i++) {
        uint64_t pa = 0x40000000ull + i * 0x200000ull;
        int tagged = pa < ram_base + ram_size;

        l2[i] = block(pa, tagged ? ATTR_TAGGED : ATTR_NORMAL);
    }
    l1[2] = block(0x40000000ull, ATTR_TAGGED);      /* ALIAS_VA */
}

/* Turn the MMU on with mmu_tables(), on each CPU */
static void mmu_on(void)
{
    uint64_t sctlr, tcr;

    asm volatile("msr mair_el1, %0" :: "r"(0xfff000ull));
    tcr = 25                    /* T0SZ: 39-bit VA */
        | (1ull << 8) | (1ull << 10) | (3ull << 12)   /* WB, inner shared */
        | (1ull << 23)          /* EPD1 */
        | (2ull << 32)          /* IPS: 40 bits */
        | (1ull << 37);         /* TBI0 */
    if (MAILBOX[0] & (FLAG_R4 | FLAG_FAULT_STOP)) {
        /*
         * TCMA0: accesses with logical tag 0 (code, stack, data) are not
         * checked, since with tag-storage-init=random their allocation
         * tags are garbage; the scenario's own accesses have other tags.
         * FLAG_FAULT_STOP also needs them to read no tags, so that the
         * host can count the tag reads of its one checked load exactly.
         */
        tcr |= 1ull << 57;
    }
    asm volatile("msr tcr_el1, %0" :: "r"(tcr));
    asm volatile("msr ttbr0_el1, %0" :: "r"(l1));
    asm volatile("msr gcr_el1, %0" :: "r"(1ull << 16));  /* RRND */
    asm volatile("dsb sy; isb; tlbi vmalle1; dsb sy; isb");
    asm volatile("mrs %0, sctlr_el1" : "=r"(sctlr));
    sctlr |= 1 | (1 << 2) | (1 << 12)         /* M, C, I */
          | (1ull << 43)                      /* ATA: EL1 tag access */
          | (1ull << 40);                     /* TCF = sync */
    asm volatile("msr sctlr_el1, %0; isb" :: "r"(sctlr));
}

/* ---- MTE helpers ---- */

static uint64_t with_tag(uint64_t p, unsigned tag)
{
    return (p & ADDR_MASK) | ((uint64_t)(tag & 0xf) << TAG_SHIFT);
}

static unsigned ldg(uint64_t p)
{
    uint64_t r = 0;

    asm volatile("ldg %0, [%1]" : "+r"(r) : "r"(p) : "memory");
    return (r >> TAG_SHIFT) & 0xf;
}

static void stg(uint64_t p)
{
    asm volatile("stg %0, [%0]" :: "r"(p) : "memory");
}

static void st2g(uint64_t p)
{
    asm volatile("st2g %0, [%0]" :: "r"(p) : "memory");
}

static void stzg(uint64_t p)
{
    asm volatile("stzg %0, [%0]" :: "r"(p) : "memory");
}

static void stz2g(uint64_t p)
{
    asm volatile("stz2g %0, [%0]" :: "r"(p) : "memory");
}

static void stgp(uint64_t p, uint64_t a, uint64_t b)
{
    asm volatile("stgp %1, %2, [%0]" :: "r"(p), "r"(a), "r"(b) : "memory");
}

static uint64_t ldgm(uint64_t p)
{
    uint64_t r;

    asm volatile("ldgm %0, [%1]" : "=r"(r) : "r"(p) : "memory");
    return r;
}

static void stgm(uint64_t p, uint64_t tags)
{
    asm volatile("stgm %0, [%1]" :: "r"(tags), "r"(p) : "memory");
}

static void dc_gva(uint64_t p)
{
    asm volatile("dc gva, %0" :: "r"(p) : "memory");
}

static void dc_gzva(uint64_t p)
{
    asm volatile("dc gzva, %0" :: "r"(p) : "memory");
}

static void dc_zva(uint64_t p)
{
    asm volatile("dc zva, %0" :: "r"(p) : "memory");
}

static void setg(uint64_t p, uint64_t len, uint64_t val)
{
    asm volatile("setgp [%0]!, %1!, %2\n\t"
                 "setgm [%0]!, %1!, %2\n\t"
                 "setge [%0]!, %1!, %2"
                 : "+r"(p), "+r"(len) : "r"(val) : "memory");
}

static uint64_t load64(uint64_t p)
{
    uint64_t v;

    asm volatile("ldr %0, [%1]" : "=r"(v) : "r"(p) : "memory");
    return v;
}

static void store64(uint64_t p, uint64_t v)
{
    asm volatile("str %0, [%1]" :: "r"(v), "r"(p) : "memory");
}

static void load128(uint64_t p)
{
    uint64_t a, b;

    asm volatile("ldp %0, %1, [%2]" : "=r"(a), "=r"(b) : "r"(p) : "memory");
}

/* Run one access that may fault; returns 1 if it took a tag check fault */
#define FAULTS(access) ({                                           \
    int before_ = fault_count;                                      \
    expect_fault = 1;                                               \
    access;                                                         \
    expect_fault = 0;                                               \
    fault_count != before_ && ((fault_esr >> 26) & 0x3f) == 0x25 && \
        (fault_esr & 0x3f) == 0x11;                                 \
})

/*
 * Plain accesses to the carveout, in asm: tag instructions change it
 * behind the compiler's back.
 */
static unsigned peek8(uint64_t a)
{
    uint32_t v;

    asm volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
    return v;
}

static void poke8(uint64_t a, uint8_t v)
{
    asm volatile("strb %w0, [%1]" :: "r"(v), "r"(a) : "memory");
}

static void poke32(uint64_t a, uint32_t v)
{
    asm volatile("str %w0, [%1]" :: "r"(v), "r"(a) : "memory");
}

/*
 * tag-storage-interleave=on: within each block, the 128-byte unit that
 * holds the tags of a 4 KiB page is at the bit-reversed unit index
 * (docs/system/arm/mte-tag-storage.rst).  Its own inverse.
 */
static unsigned interleave_bits;

static uint64_t interleave(uint64_t off)
{
    uint64_t unit = (off >> 7) & ((1ull << interleave_bits) - 1), rev = 0;

    for (unsigned i = 0; i < interleave_bits; i++) {
        rev |= ((unit >> i) & 1) << (interleave_bits - 1 - i);
    }
    return (off & ~(((1ull << interleave_bits) - 1) << 7)) | rev << 7;
}

/* Address of the carveout byte that holds the tag of @p */
static uint64_t tag_byte(uint64_t p)
{
    return carveout + interleave(((p & ADDR_MASK) - ram_base) / 32);
}

/* The first granule whose tag is in carveout byte @cb */
static uint64_t tagged_of(uint64_t cb)
{
    return ram_base + interleave(cb - carveout) * 32;
}

static unsigned carveout_tag(uint64_t p)
{
    return (peek8(tag_byte(p)) >> (((p >> 4) & 1) * 4)) & 0xf;
}

/* Wait for the host to act on stage @n */
static void host_stage(uint64_t n)
{
    puts_uart("STAGE ");
    put_dec(n);
    puts_uart("\n");
    MAILBOX[4] = n;
    while (MAILBOX[5] != n) {
        asm volatile("yield");
    }
}

/* ---- the tests ---- */

/*
 * The middle of the RAM that mmu_enable() maps (1 GiB at most), away from
 * code and stack
 */
static uint64_t ram_middle(void)
{
    uint64_t mapped = ram_size < 0x40000000ull ? ram_size : 0x40000000ull;

    return ram_base + mapped / 2;
}

static uint64_t buf_base(int n)
{
    /* 64 KiB test buffers */
    return ram_middle() + n * 0x10000ull;
}

static void test_stg_ldg(void)
{
    uint64_t b = buf_base(0);
    int ok = 1;

    for (int i = 0; i < 64; i++) {
        stg(with_tag(b + i * GRANULE, i));
    }
    for (int i = 0; i < 64; i++) {
        ok &= ldg(b + i * GRANULE) == (i & 0xf);
    }
    check("stg-ldg", ok);

    uint64_t p = with_tag(b, 7), q;
    asm volatile("irg %0, %1" : "=r"(q) : "r"(p));
    stg(q);
    check("irg-stg-ldg", ldg(b) == ((q >> TAG_SHIFT) & 0xf));

    stg(with_tag(b, 9));
    check("check-match", !FAULTS(load64(with_tag(b, 9))));
    check("check-mismatch-load", FAULTS(load64(with_tag(b, 3))));
    check_eq("fault-far", fault_far & ADDR_MASK, b);
    check("check-mismatch-store", FAULTS(store64(with_tag(b, 4), 1)));
    check_eq("store-far", fault_far & ADDR_MASK, b);
    check_eq("store-esr-wnr", (fault_esr >> 6) & 1, 1);
    /* data unchanged by the faulting store */
    check_eq("store-suppressed", load64(with_tag(b, 9)), 0);
}

static void test_multi_granule(void)
{
    uint64_t b = buf_base(1);

    stg(with_tag(b, 1));
    stg(with_tag(b + 16, 2));
    check("ldp-across-granules", FAULTS(load128(with_tag(b + 8, 1))));
    /* FAR is within the access: QEMU reports the failing granule */
    check("ldp-far", (fault_far & ADDR_MASK) >= b + 8 &&
          (fault_far & ADDR_MASK) < b + 24);
    /* An unaligned LDR checks both granules it touches */
    check("unaligned-cross-granule", FAULTS(load64(with_tag(b + 12, 1))));
    stg(with_tag(b + 16, 1));
    check("unaligned-same-tags", !FAULTS(load64(with_tag(b + 12, 1))));

    /* Across a page: both pages' tags are checked */
    uint64_t pg = b + PAGE - GRANULE;
    stg(with_tag(pg, 5));
    stg(with_tag(pg + GRANULE, 5));
    check("cross-page-ldp-match", !FAULTS(load128(with_tag(pg + 8, 5))));
    stg(with_tag(pg + GRANULE, 6));
    check("cross-page-ldr-mismatch", FAULTS(load64(with_tag(pg + 12, 5))));
}

static void test_store_forms(void)
{
    uint64_t b = buf_base(2);

    store64(b, 0x1111);
    store64(b + 16, 0x2222);
    st2g(with_tag(b, 0xa));
    check("st2g", ldg(b) == 0xa && ldg(b + 16) == 0xa &&
          load64(with_tag(b, 0xa)) == 0x1111);

    stzg(with_tag(b, 0xb));
    check("stzg", ldg(b) == 0xb && ldg(b + 16) == 0xa &&
          load64(with_tag(b, 0xb)) == 0);

    store64(b + 32, 0x3333);
    store64(b + 48, 0x4444);
    stz2g(with_tag(b + 32, 0xc));
    check("stz2g", ldg(b + 32) == 0xc && ldg(b + 48) == 0xc &&
          load64(with_tag(b + 32, 0xc)) == 0 &&
          load64(with_tag(b + 48, 0xc)) == 0);

    stgp(with_tag(b + 64, 0xd), 0x5555, 0x6666);
    check("stgp", ldg(b + 64) == 0xd &&
          load64(with_tag(b + 64, 0xd)) == 0x5555 &&
          load64(with_tag(b + 72, 0xd)) == 0x6666);
}

static void test_block_forms(void)
{
    uint64_t b = buf_base(3), gmid, dczid, tags, got;
    unsigned gm_bytes, dcz_bytes;
    int ok;

    asm volatile("mrs %0, gmid_el1" : "=r"(gmid));
    gm_bytes = 4 << (gmid & 0xf);
    tags = 0xfedcba9876543210ull;
    stgm(b, tags);
    ok = 1;
    for (unsigned i = 0; i < gm_bytes / GRANULE; i++) {
        ok &= ldg(b + i * GRANULE) == ((tags >> (4 * i)) & 0xf);
    }
    check("stgm", ok);
    got = ldgm(b);
    check_eq("ldgm", got, gm_bytes >= 256 ? tags :
             tags & ((1ull << (gm_bytes / GRANULE * 4)) - 1));

    asm volatile("mrs %0, dczid_el0" : "=r"(dczid));
    dcz_bytes = 4 << (dczid & 0xf);
    uint64_t z = b + 0x1000;
    for (unsigned i = 0; i < dcz_bytes; i += 8) {
        store64(z + i, 0x77);
    }
    dc_gva(with_tag(z, 0x6));
    ok = 1;
    for (unsigned i = 0; i < dcz_bytes; i += GRANULE) {
        ok &= ldg(z + i) == 0x6;
    }
    check("dc-gva", ok && load64(with_tag(z, 6)) == 0x77);

    dc_gzva(with_tag(z, 0x9));
    ok = 1;
    for (unsigned i = 0; i < dcz_bytes; i += GRANULE) {
        ok &= ldg(z + i) == 0x9 && load64(with_tag(z + i, 9)) == 0;
    }
    check("dc-gzva", ok);

    uint64_t s = b + 0x2000;
    setg(with_tag(s, 0x3), 0x400, 0xab);
    ok = 1;
    for (unsigned i = 0; i < 0x400; i += GRANULE) {
        ok &= ldg(s + i) == 0x3 && load64(with_tag(s + i, 3)) ==
              0xababababababababull;
    }
    check("setg", ok && ldg(s + 0x400) == 0);
}

static void test_carveout_alias(void)
{
    uint64_t b = buf_base(4);
    int ok = 1;

    /* tag -> data: STG results are carveout bytes */
    for (int i = 0; i < 32; i++) {
        stg(with_tag(b + i * GRANULE, 15 - (i & 0xf)));
    }
    for (int i = 0; i < 32; i++) {
        ok &= carveout_tag(b + i * GRANULE) == 15 - (i & 0xf);
    }
    check_eq("tag-to-data-byte0", peek8(tag_byte(b)), 0xef);
    check("tag-to-data", ok);

    /* data -> tag: a carveout byte written by the CPU is the tag */
    poke8(tag_byte(b + 0x100), 0x5c);
    check("data-to-tag-ldg", ldg(b + 0x100) == 0xc && ldg(b + 0x110) == 5);
    check("data-to-tag-check-ok", !FAULTS(load64(with_tag(b + 0x100, 0xc))));
    check("data-to-tag-check-fault",
          FAULTS(load64(with_tag(b + 0x110, 0xc))));
    check_eq("data-to-tag-far", fault_far & ADDR_MASK, b + 0x110);

    /* a tag already cached in a TLB entry is not stale */
    stg(with_tag(b + 0x200, 1));
    check("tlb-before", !FAULTS(load64(with_tag(b + 0x200, 1))));
    poke8(tag_byte(b + 0x200), 0x02);
    check("tlb-after", FAULTS(load64(with_tag(b + 0x200, 1))) &&
          !FAULTS(load64(with_tag(b + 0x200, 2))));

    /* each store form lands in the carveout */
    uint64_t c = b + 0x1000;
    st2g(with_tag(c, 0x4));
    check_eq("st2g-byte", peek8(tag_byte(c)), 0x44);
    stz2g(with_tag(c + 32, 0x8));
    check_eq("stz2g-byte", peek8(tag_byte(c + 32)), 0x88);
    stgm(c + 0x100, 0x0123456789abcdefull);
    check_eq("stgm-bytes", load64(tag_byte(c + 0x100)),
             0x0123456789abcdefull);
    dc_gzva(with_tag(c + 0x400, 0xd));
    check_eq("dc-gzva-byte", peek8(tag_byte(c + 0x400)), 0xdd);
    setg(with_tag(c + 0x800, 0x7), 0x100, 0);
    ok = 1;
    for (int i = 0; i < 8; i++) {
        ok &= peek8(tag_byte(c + 0x800) + i) == 0x77;
    }
    check("setg-bytes", ok && peek8(tag_byte(c + 0x800) + 8) == 0);
}

/* Code in the carveout, rewritten by tag stores */
typedef int (*fn_t)(void);

static void sync_code(uint64_t p)
{
    asm volatile("dc cvau, %0; dsb ish; ic ivau, %0; dsb ish; isb"
                 :: "r"(p) : "memory");
}

static void write_code(uint64_t p, uint32_t insn0)
{
    poke32(p, insn0);           /* movz w0, #n */
    poke32(p + 4, 0xd65f03c0);  /* ret */
    sync_code(p);
}


static void test_tb_invalidate(void)
{
    uint64_t code = carveout + ram_size / 32 - 2 * PAGE;
    uint64_t data = tagged_of(code);
    fn_t f = (fn_t)code;

    write_code(code, 0x52800020);     /* movz w0, #1 */
    check_eq("carveout-exec", f(), 1);
    stgm(data, 0xd65f03c052800040ull);     /* movz w0, #2; ret */
    sync_code(code);
    check_eq("tb-invalidate-stgm", f(), 2);

    /* STG rewrites one nibble: 0x52800020 -> 0x52800040 */
    uint64_t code2 = code + 64;
    uint64_t data2 = tagged_of(code2);
    fn_t f2 = (fn_t)code2;

    write_code(code2, 0x52800020);
    check_eq("carveout-exec-2", f2(), 1);
    stg(with_tag(data2 + GRANULE, 4));
    sync_code(code2);
    check_eq("tb-invalidate-stg", f2(), 2);
}

static void test_self_tagged(void)
{
    uint64_t page = carveout + ram_size / 32 - PAGE;
    uint64_t va = ALIAS_VA + (page - 0x40000000ull);

    poke8(page, 0x77);
    check_eq("self-ldg-reads-0", ldg(va), 0);
    stg(with_tag(va, 3));
    check_eq("self-stg-ignored", peek8(page), 0x77);
    check("self-no-fault", !FAULTS(load64(with_tag(va, 5))));
    /* same page again, and a second page: one log line per page */
    check("self-no-fault-again", !FAULTS(load64(with_tag(va + 64, 6))));
    check("self-no-fault-page2", !FAULTS(load64(with_tag(va - PAGE, 6))));
}

static void test_host_alias(void)
{
    uint64_t b = buf_base(5);
    int ok = 1;

    /* the host reads these tags from the carveout */
    for (int i = 0; i < 64; i++) {
        stg(with_tag(b + i * GRANULE, (i * 7) & 0xf));
    }
    host_stage(1);
    /* the host wrote byte i = (2i+1) << 4 | 2i (mod 16) at b + 0x1000 */
    for (int i = 0; i < 64; i++) {
        ok &= ldg(b + 0x1000 + i * GRANULE) == (i & 0xf);
    }
    check("host-write-ldg", ok);
    check("host-write-check",
          !FAULTS(load64(with_tag(b + 0x1000 + 3 * GRANULE, 3))) &&
          FAULTS(load64(with_tag(b + 0x1000 + 3 * GRANULE, 4))));
}

static void test_interleave(void);

static void run_tests(void)
{
    test_stg_ldg();
    test_multi_granule();
    test_store_forms();
    test_block_forms();
    if (tag_storage) {
        test_carveout_alias();
        test_tb_invalidate();
        test_self_tagged();
        if (MAILBOX[0] & FLAG_HOST) {
            test_host_alias();
        }
        if (interleave_bits) {
            test_interleave();
        }
    }
}

/* Address of a global label defined in an asm statement */
#define INSN_ADDR(label) ({                                         \
    uint64_t a_;                                                    \
    asm("adr %0, " #label : "=r"(a_));                              \
    a_;                                                             \
})

/*
 * For the gdb test: tag gdb_buf's first granule 0x3, then load from it
 * with logical tag 0x5 at the instruction labelled tag_fault_insn.  gdb
 * stops there (mte-tag-fault-stop), may change the allocation tag, and
 * the program reports whether the fault reached its handler.
 */
uint64_t gdb_buf;

static void gdb_scenario(void)
{
    uint64_t v;

    gdb_buf = buf_base(6);
    stg(with_tag(gdb_buf, 3));
    store64(with_tag(gdb_buf, 3), 0x1234);
    puts_uart("GDB scenario ready\n");
    expect_fault = 1;
    asm volatile(".globl tag_fault_insn\n"
                 "tag_fault_insn: ldr %0, [%1]"
                 : "=r"(v) : "r"(with_tag(gdb_buf, 5)) : "memory");
    if (expect_fault) {
        expect_fault = 0;
        puts_uart("GDB no fault, loaded ");
        put_hex(v);
        puts_uart("\n");
    } else {
        puts_uart("GDB fault delivered, far ");
        put_hex(fault_far);
        puts_uart("\n");
    }

    /* Asynchronous mode: the mismatch only sets TFSR_EL1.TF0 */
    uint64_t sctlr, tfsr;

    asm volatile("mrs %0, sctlr_el1" : "=r"(sctlr));
    sctlr = (sctlr & ~(3ull << 40)) | (2ull << 40);
    asm volatile("msr sctlr_el1, %0; isb" :: "r"(sctlr));
    /*
     * The store is not first in its TB, and the ADR after it computes its
     * result from the PC the TB last set: a stop that resumes into the
     * rest of the TB with another PC gives a wrong address.
     */
    uint64_t after;

    asm volatile("nop\n\tnop\n"
                 ".globl async_fault_insn\n"
                 "async_fault_insn: str %1, [%2]\n\t"
                 "adr %0, async_fault_after\n"
                 ".globl async_fault_after\n"
                 "async_fault_after:"
                 : "=&r"(after) : "r"(v), "r"(with_tag(gdb_buf + 16, 7))
                 : "memory");
    asm volatile("dsb sy; isb; mrs %0, tfsr_el1" : "=r"(tfsr));
    puts_uart("GDB async tfsr ");
    put_hex(tfsr);
    puts_uart("\n");
    puts_uart("GDB async adr ");
    put_hex(after);
    puts_uart(after == INSN_ADDR(async_fault_after) ? " right\n" :
                                                     " wrong\n");
    check("gdb-scenario", 1);
}

/*
 * For the reuse checker test (tag-storage-check=...): one clean phase,
 * then exactly one access breaking each rule, each at an instruction
 * whose address goes to MAILBOX[6] so that the host can match the report,
 * then a flood of R2 to exercise the rate limit.  The host counts after
 * each stage.
 */
#define CHECK_FLOOD 100

/*
 * A known call chain for the R1 stage, whose reports give the accessor's
 * link register and frame records, and the writer's link register:
 * bt_outer(addr, value, leaf, slot) stores its own return address at
 * @slot, calls bt_inner, which calls @leaf (bt_strb: the culprit store;
 * bt_ldg: the read of data as tags) with frame records at both levels.
 * In the leaf, LR is bt_inner_ret and the frame records give bt_outer_ret
 * then *slot.  In asm, because C at -O2 keeps no frame records.
 */
asm(".pushsection .text\n"
    ".globl bt_outer\n"
    "bt_outer:\n"
    "  stp x29, x30, [sp, #-16]!\n"
    "  mov x29, sp\n"
    "  str x30, [x3]\n"
    "  bl bt_inner\n"
    ".globl bt_outer_ret\n"
    "bt_outer_ret:\n"
    "  ldp x29, x30, [sp], #16\n"
    "  ret\n"
    "bt_inner:\n"
    "  stp x29, x30, [sp, #-16]!\n"
    "  mov x29, sp\n"
    "  blr x2\n"
    ".globl bt_inner_ret\n"
    "bt_inner_ret:\n"
    "  ldp x29, x30, [sp], #16\n"
    "  ret\n"
    ".globl bt_strb\n"
    "bt_strb:\n"
    "  strb w1, [x0]\n"
    "  ret\n"
    ".globl bt_ldg\n"
    "bt_ldg:\n"
    "  ldg x1, [x0]\n"
    "  mov x0, x1\n"
    "  ret\n"
    ".popsection\n");

/* @slot: the address of a mailbox word */
typedef uint64_t BtOuter(uint64_t addr, uint64_t value, uint64_t leaf,
                         uint64_t slot);

static void check_scenario(void)
{
    uint64_t a = buf_base(7), b = buf_base(8), c = buf_base(9);
    uint64_t d = buf_base(10);
    uint64_t self = carveout + 0x1000;
    uint64_t self_va = ALIAS_VA + (self - 0x40000000ull);
    uint64_t v = 0;
    int ok = 1;

    /* clean: tags written, read back and checked, tagged data */
    for (int i = 0; i < 64; i++) {
        stg(with_tag(a + i * GRANULE, i & 0xf));
    }
    for (int i = 0; i < 64; i++) {
        ok &= ldg(a + i * GRANULE) == (i & 0xf);
        store64(with_tag(a + i * GRANULE, i & 0xf), i);
    }
    ok &= ldgm(a) == 0xfedcba9876543210ull;
    check("clean", ok && !FAULTS(load64(with_tag(a + 3 * GRANULE, 3))));
    host_stage(10);

    /*
     * R1: data written to the tag byte of b, then read as tags, both
     * through bt_outer: MAILBOX[11] and [12] get its return addresses
     */
    MAILBOX[10] = INSN_ADDR(bt_strb);
    ((BtOuter *)INSN_ADDR(bt_outer))(tag_byte(b), 0x54, INSN_ADDR(bt_strb),
                                     (uint64_t)&MAILBOX[11]);
    MAILBOX[6] = INSN_ADDR(bt_ldg);
    v = ((BtOuter *)INSN_ADDR(bt_outer))(b, 0, INSN_ADDR(bt_ldg),
                                         (uint64_t)&MAILBOX[12]);
    MAILBOX[13] = INSN_ADDR(bt_inner_ret);
    MAILBOX[14] = INSN_ADDR(bt_outer_ret);
    check_eq("r1-ldg-reads-data", (v >> TAG_SHIFT) & 0xf, 4);
    host_stage(11);

    /* R2: tags written for c, then its tag byte read as data */
    MAILBOX[10] = INSN_ADDR(r2_culprit_insn);
    asm volatile(".globl r2_culprit_insn\n"
                 "r2_culprit_insn: stg %0, [%0]"
                 :: "r"(with_tag(c, 9)) : "memory");
    MAILBOX[6] = INSN_ADDR(r2_insn);
    asm volatile(".globl r2_insn\n"
                 "r2_insn: ldrb %w0, [%1]"
                 : "=r"(v) : "r"(tag_byte(c)) : "memory");
    check_eq("r2-ldrb-reads-tag", v & 0xf, 9);
    host_stage(12);

    /* R3: a Tagged load from tag storage */
    poke8(self, 0x5a);
    MAILBOX[6] = INSN_ADDR(r3_insn);
    asm volatile(".globl r3_insn\n"
                 "r3_insn: ldrb %w0, [%1]"
                 : "=r"(v) : "r"(with_tag(self_va, 5)) : "memory");
    check_eq("r3-load-untagged", v, 0x5a);
    /* and a tag-only instruction in the middle of its TB (dropped) */
    MAILBOX[9] = MAILBOX[6];
    MAILBOX[6] = INSN_ADDR(r3_stg_insn);
    asm volatile("nop\n"
                 ".globl r3_stg_insn\n"
                 "r3_stg_insn: stg %0, [%0]\n\t"
                 "nop"
                 :: "r"(with_tag(self_va + GRANULE, 5)) : "memory");
    host_stage(13);

    /* a hot bug: the same R2, CHECK_FLOOD times */
    MAILBOX[6] = INSN_ADDR(flood_insn);
    for (int i = 0; i < CHECK_FLOOD; i++) {
        asm volatile(".globl flood_insn\n"
                     "flood_insn: ldrb %w0, [%1]"
                     : "=r"(v) : "r"(tag_byte(c)) : "memory");
    }
    host_stage(14);
    /* the host read tag_byte(a) like a DMA engine, and wrote d's */
    host_stage(15);
    /* R1 again, with a device as the culprit */
    MAILBOX[6] = INSN_ADDR(r1_dma_insn);
    asm volatile(".globl r1_dma_insn\n"
                 "r1_dma_insn: ldg %0, [%1]" : "+r"(v) : "r"(d) : "memory");
    check_eq("r1-ldg-reads-dma", (v >> TAG_SHIFT) & 0xf, 6);
    host_stage(16);
    check("check-scenario", 1);
}

/*
 * With tag-storage-init=random (or zero, to compare): tag reads of tag
 * storage that nothing wrote since reset, each at an instruction in
 * MAILBOX[6], then reads of written tags, which are not R4.  The guest
 * learns the garbage tags by reading the carveout as data, which is no
 * violation for bytes nobody wrote.
 */
static void r4_scenario(void)
{
    uint64_t a = buf_base(11), p, v = 0;
    unsigned t;
    int before;

    /* LDG */
    MAILBOX[6] = INSN_ADDR(r4_ldg_insn);
    asm volatile(".globl r4_ldg_insn\n"
                 "r4_ldg_insn: ldg %0, [%1]" : "+r"(v) : "r"(a) : "memory");
    check_eq("r4-ldg-reads-storage", (v >> TAG_SHIFT) & 0xf, carveout_tag(a));
    host_stage(20);

    /*
     * a tag check, with the garbage tag as the logical tag: it passes.
     * A non-zero one, as TCMA0 leaves tag 0 unchecked (with init=zero,
     * all are 0: no check happens)
     */
    for (p = a + 2 * GRANULE; p < a + 0x800 && !carveout_tag(p);
         p += 2 * GRANULE) {
        continue;
    }
    t = carveout_tag(p);
    before = fault_count;
    expect_fault = 1;
    MAILBOX[6] = INSN_ADDR(r4_check_insn);
    asm volatile(".globl r4_check_insn\n"
                 "r4_check_insn: ldr %0, [%1]"
                 : "=r"(v) : "r"(with_tag(p, t)) : "memory");
    expect_fault = 0;
    check("r4-checked-load-passes", fault_count == before);
    host_stage(21);

    /* LDGM of a 256-byte block */
    p = a + 0x1000;
    MAILBOX[6] = INSN_ADDR(r4_ldgm_insn);
    asm volatile(".globl r4_ldgm_insn\n"
                 "r4_ldgm_insn: ldgm %0, [%1]" : "=r"(v) : "r"(p) : "memory");
    check_eq("r4-ldgm-reads-storage", v & 0xff,
             carveout_tag(p) | carveout_tag(p + GRANULE) << 4);
    host_stage(22);

    /* written tags are no R4: STG then LDG; data then LDG is R1 */
    p = a + 0x2000;
    stg(with_tag(p, 3));
    stg(with_tag(p + GRANULE, 4));
    check("r4-stg-ldg", ldg(p) == 3 && ldg(p + GRANULE) == 4);
    p = a + 0x3000;
    MAILBOX[10] = INSN_ADDR(r4_culprit_insn);
    asm volatile(".globl r4_culprit_insn\n"
                 "r4_culprit_insn: strb %w0, [%1]"
                 :: "r"(0x21), "r"(tag_byte(p)) : "memory");
    MAILBOX[6] = INSN_ADDR(r4_r1_insn);
    asm volatile(".globl r4_r1_insn\n"
                 "r4_r1_insn: ldg %0, [%1]" : "+r"(v) : "r"(p) : "memory");
    check_eq("r4-data-then-ldg-is-r1", (v >> TAG_SHIFT) & 0xf, 1);
    host_stage(23);
    check("r4-scenario", 1);
}

/*
 * For the fault stop tests (FLAG_FAULT_STOP, the host has turned
 * mte-tag-fault-stop on): one checked load that faults, at
 * fault_stop_insn (MAILBOX[6]), from a granule whose tag nothing wrote
 * (MAILBOX[4] = 0: R4 with tag-storage-init=random) or whose tag byte the
 * guest last wrote as data (MAILBOX[4] = 1: R1, naming the store in
 * MAILBOX[10]).  The logical tag is the allocation tag plus one, never 0
 * (TCMA0 leaves tag 0 unchecked), so that the load surely faults.  The
 * host counts at stage 40, while the VM is stopped on the fault, and at
 * stage 41, after the fault reached the handler.
 */
static void fault_stop_scenario(void)
{
    uint64_t p = buf_base(14), v = 0;
    unsigned t;
    int before;

    if (MAILBOX[4]) {
        MAILBOX[10] = INSN_ADDR(fault_stop_culprit_insn);
        asm volatile(".globl fault_stop_culprit_insn\n"
                     "fault_stop_culprit_insn: strb %w0, [%1]"
                     :: "r"(0x96), "r"(tag_byte(p)) : "memory");
    }
    /* untagged, so unchecked: no tag read */
    store64(p, 0x5a5a);
    /* reading the carveout as data is no violation of these bytes */
    t = carveout_tag(p) % 15 + 1;
    MAILBOX[6] = INSN_ADDR(fault_stop_insn);
    host_stage(40);

    before = fault_count;
    expect_fault = 1;
    asm volatile(".globl fault_stop_insn\n"
                 "fault_stop_insn: ldr %0, [%1]"
                 : "+r"(v) : "r"(with_tag(p, t)) : "memory");
    expect_fault = 0;
    check("fault-stop-delivered", fault_count == before + 1 &&
          ((fault_esr >> 26) & 0x3f) == 0x25 && (fault_esr & 0x3f) == 0x11);
    check_eq("fault-stop-far", fault_far & ADDR_MASK, p);
    /* the handler skipped the load: v kept its 0, not 0x5a5a */
    check_eq("fault-stop-suppressed", v, 0);
    host_stage(41);
    check("fault-stop-scenario", 1);
}

/*
 * With -smp 2: the culprit on one CPU, the violation on the other.  CPU 1
 * runs smp_secondary(), one command at a time from smp_cmd.
 */
#define PSCI_CPU_ON_64  0xc4000003ull

static volatile uint64_t smp_cmd, smp_arg, smp_done;  /* between CPUs */

static void dmb_ish(void)
{
    asm volatile("dmb ish" : : : "memory");
}

void smp_secondary(void)
{
    uint64_t v;

    mmu_on();
    smp_done = 1;
    for (;;) {
        uint64_t cmd;

        while (!(cmd = smp_cmd)) {
            asm volatile("yield");
        }
        dmb_ish();
        if (cmd == 1) {
            asm volatile(".globl smp_data_insn\n"
                         "smp_data_insn: strb %w0, [%1]"
                         :: "r"(0x87), "r"(smp_arg) : "memory");
        } else if (cmd == 2) {
            asm volatile(".globl smp_ldrb_insn\n"
                         "smp_ldrb_insn: ldrb %w0, [%1]"
                         : "=r"(v) : "r"(smp_arg) : "memory");
            smp_arg = v;
        }
        dmb_ish();
        smp_cmd = 0;
        smp_done = cmd;
    }
}

static void smp_run(uint64_t cmd, uint64_t arg)
{
    smp_arg = arg;
    smp_done = 0;
    dmb_ish();
    smp_cmd = cmd;
    while (smp_done != cmd) {
        asm volatile("yield");
    }
    dmb_ish();
}

static void smp_scenario(void)
{
    uint64_t d = buf_base(12), e = buf_base(13), v = 0;
    register uint64_t x0 asm("x0") = PSCI_CPU_ON_64;
    register uint64_t x1 asm("x1") = 1;     /* MPIDR of CPU 1 */
    register uint64_t x2 asm("x2") = INSN_ADDR(secondary_entry);
    register uint64_t x3 asm("x3") = 0;

    asm volatile("hvc #0" : "+r"(x0) : "r"(x1), "r"(x2), "r"(x3) : "memory");
    check_eq("smp-cpu-on", x0, 0);
    while (!smp_done) {
        asm volatile("yield");
    }

    /* R1: CPU 1 writes d's tag byte as data, CPU 0 reads it as tags */
    MAILBOX[10] = INSN_ADDR(smp_data_insn);
    smp_run(1, tag_byte(d));
    MAILBOX[6] = INSN_ADDR(smp_ldg_insn);
    asm volatile(".globl smp_ldg_insn\n"
                 "smp_ldg_insn: ldg %0, [%1]" : "+r"(v) : "r"(d) : "memory");
    check_eq("smp-ldg-reads-cpu1-data", (v >> TAG_SHIFT) & 0xf, 7);
    host_stage(30);

    /* R2: CPU 0 writes e's tags, CPU 1 reads them as data */
    MAILBOX[10] = INSN_ADDR(smp_stg_insn);
    asm volatile(".globl smp_stg_insn\n"
                 "smp_stg_insn: stg %0, [%0]"
                 :: "r"(with_tag(e, 0xc)) : "memory");
    MAILBOX[6] = INSN_ADDR(smp_ldrb_insn);
    smp_run(2, tag_byte(e));
    check_eq("smp-cpu1-reads-cpu0-tags", smp_arg & 0xf, 0xc);
    host_stage(31);
    check("smp-scenario", 1);
}

/*
 * Randomized differential test: random tag and data operations on a
 * 256 KiB tagged area T and on the carveout bytes that hold its tags,
 * each checked against a reference model of tag storage, model[]: one
 * tag per granule of T.  With tag storage, data accesses to those bytes
 * are tag accesses, and the first and last bytes of the carveout (tags
 * of the first and last 32 bytes of RAM, which nothing else uses) are
 * exercised too.  Without tag storage only the tag operations run.
 * Stops at the first difference, printing the seed and the operation.
 */
#define RND_AREA        (256 * 1024)
#define RND_GRANULES    (RND_AREA / GRANULE)

static uint8_t model[RND_GRANULES];
static uint8_t model_edge[4];   /* tags: RAM granules 0, 1, last-1, last */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
    /* xorshift64*: small, fast, and the same on every run of a seed */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
    return rnd() % n;
}

static uint64_t rnd_seed, rnd_op;
static int rnd_failed;

static void rnd_fail(const char *what, uint64_t addr, uint64_t got,
                     uint64_t want)
{
    if (rnd_failed++) {
        return;
    }
    puts_uart("not ok random op=");
    put_dec(rnd_op);
    puts_uart(" ");
    puts_uart(what);
    puts_uart(" addr=");
    put_hex(addr);
    puts_uart(" got=");
    put_hex(got);
    puts_uart(" want=");
    put_hex(want);
    puts_uart(" seed=");
    put_hex(rnd_seed);
    puts_uart("\n");
}

/* Would a Tagged access of @len bytes at @p with tag @t fault? */
static int model_faults(uint64_t area, uint64_t p, unsigned len, unsigned t)
{
    for (uint64_t g = p / GRANULE; g <= (p + len - 1) / GRANULE; g++) {
        if (model[g - area / GRANULE] != t) {
            return 1;
        }
    }
    return 0;
}

/* The carveout bytes of T as the model sees them */
static uint64_t model_bytes(uint64_t area, uint64_t cb, unsigned len)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < len; i++) {
        uint64_t g = (tagged_of(cb + i) - area) / GRANULE;

        v |= (uint64_t)(model[g] | model[g + 1] << 4) << (8 * i);
    }
    return v;
}

static uint64_t peek_n(uint64_t a, unsigned len)
{
    uint64_t v = 0;

    switch (len) {
    case 1:
        asm volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
        break;
    case 2:
        asm volatile("ldrh %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
        break;
    case 4:
        asm volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
        break;
    default:
        asm volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory");
        break;
    }
    return v;
}

static void poke_n(uint64_t a, unsigned len, uint64_t v)
{
    switch (len) {
    case 1:
        asm volatile("strb %w0, [%1]" :: "r"(v), "r"(a) : "memory");
        break;
    case 2:
        asm volatile("strh %w0, [%1]" :: "r"(v), "r"(a) : "memory");
        break;
    case 4:
        asm volatile("str %w0, [%1]" :: "r"(v), "r"(a) : "memory");
        break;
    default:
        asm volatile("str %0, [%1]" :: "r"(v), "r"(a) : "memory");
        break;
    }
}

enum {
    OP_STG, OP_ST2G, OP_STZG, OP_STGM, OP_DC_GZVA, OP_LDG, OP_LDGM,
    OP_LOAD, OP_STORE, OP_LDP, OP_CROSS_PAGE, OP_TS_LOAD, OP_TS_STORE,
    OP_TS_EDGE, OP_TS_TAGGED, OP__MAX
};

static const char *const op_name[OP__MAX] = {
    "stg", "st2g", "stzg", "stgm", "dc-gzva", "ldg", "ldgm", "load",
    "store", "ldp", "cross-page", "ts-load", "ts-store", "ts-edge",
    "ts-tagged",
};

static void random_test(uint64_t seed, uint64_t ops)
{
    uint64_t area = ram_base + ram_size / 4 * 3;
    uint64_t gm_bytes, dcz_bytes, id, counts[OP__MAX] = { 0 };
    uint64_t ram_last = ram_base + ram_size - GRANULE;
    uint64_t cv_last = carveout + ram_size / 32 - 1;
    int nops = tag_storage ? OP__MAX : OP_TS_LOAD;
    /*
     * The tag bytes of T: T is one block's worth of memory (or less) and
     * block-aligned, so interleaving with blocks of up to 8 KiB keeps
     * them in this window.
     */
    uint64_t rnd_window = carveout + (area - ram_base) / 32;

    asm volatile("mrs %0, gmid_el1" : "=r"(id));
    gm_bytes = 4ull << (id & 0xf);
    asm volatile("mrs %0, dczid_el0" : "=r"(id));
    dcz_bytes = 4ull << (id & 0xf);
    rnd_seed = seed;
    rnd_state = seed ? seed : 1;
    puts_uart("# random seed=");
    put_hex(seed);
    puts_uart(" ops=");
    put_dec(ops);
    puts_uart("\n");

    /* a known start: tag 0 everywhere in T and at the edges */
    for (uint64_t g = 0; g < RND_GRANULES; g++) {
        stg(with_tag(area + g * GRANULE, 0));
        model[g] = 0;
    }
    if (tag_storage) {
        poke8(carveout, 0);
        poke8(cv_last, 0);
    }
    for (int i = 0; i < 4; i++) {
        model_edge[i] = 0;
    }

    for (rnd_op = 0; rnd_op < ops && !rnd_failed; rnd_op++) {
        int op = rnd_below(nops);
        uint64_t g = rnd_below(RND_GRANULES);
        uint64_t p = area + g * GRANULE;
        unsigned t = rnd_below(16), len;
        uint64_t v, want, q;

        counts[op]++;
        switch (op) {
        case OP_STG:
            stg(with_tag(p, t));
            model[g] = t;
            break;
        case OP_ST2G:
            g &= ~1ull;
            st2g(with_tag(area + g * GRANULE, t));
            model[g] = model[g + 1] = t;
            break;
        case OP_STZG:
            stzg(with_tag(p, t));
            model[g] = t;
            v = peek_n(with_tag(p, t), 8);
            if (v) {
                rnd_fail("stzg-data", p, v, 0);
            }
            break;
        case OP_STGM:
            p &= ~(gm_bytes - 1);
            v = rnd();
            stgm(p, v);
            for (uint64_t i = 0; i < gm_bytes / GRANULE; i++) {
                uint64_t a = p + i * GRANULE;

                model[(a - area) / GRANULE] = (v >> (((a >> 4) & 15) * 4)) & 15;
            }
            break;
        case OP_DC_GZVA:
            p &= ~(dcz_bytes - 1);
            dc_gzva(with_tag(p, t));
            for (uint64_t i = 0; i < dcz_bytes / GRANULE; i++) {
                model[(p - area) / GRANULE + i] = t;
            }
            break;
        case OP_LDG:
            if (ldg(p) != model[g]) {
                rnd_fail("ldg", p, ldg(p), model[g]);
            }
            break;
        case OP_LDGM:
            p &= ~(gm_bytes - 1);
            v = ldgm(p);
            want = 0;
            for (uint64_t i = 0; i < gm_bytes / GRANULE; i++) {
                uint64_t a = p + i * GRANULE;

                want |= (uint64_t)model[(a - area) / GRANULE] <<
                        (((a >> 4) & 15) * 4);
            }
            if (v != want) {
                rnd_fail("ldgm", p, v, want);
            }
            break;
        case OP_LOAD:
        case OP_STORE:
            /* 1, 2, 4 or 8 bytes at any offset: may cross a granule */
            len = 1 << rnd_below(4);
            p += rnd_below(GRANULE);
            if (p + len > area + RND_AREA) {
                p -= GRANULE;
            }
            if (rnd_below(2)) {
                t = model[(p - area) / GRANULE];   /* mostly matching */
            }
            want = model_faults(area, p, len, t);
            q = with_tag(p, t);
            v = op == OP_LOAD ? FAULTS(peek_n(q, len)) :
                                FAULTS(poke_n(q, len, rnd()));
            if (v != want) {
                rnd_fail(op == OP_LOAD ? "load-fault" : "store-fault", q, v,
                         want);
            }
            break;
        case OP_LDP:
            p += rnd_below(GRANULE);
            if (p + 16 > area + RND_AREA) {
                p -= GRANULE;
            }
            if (rnd_below(2)) {
                t = model[(p - area) / GRANULE];
            }
            want = model_faults(area, p, 16, t);
            v = FAULTS(load128(with_tag(p, t)));
            if (v != want) {
                rnd_fail("ldp-fault", with_tag(p, t), v, want);
            }
            break;
        case OP_CROSS_PAGE:
            /* an access that ends in the next page of T */
            p = area + (rnd_below(RND_AREA / PAGE - 1) + 1) * PAGE -
                1 - rnd_below(7);
            len = 8;
            if (rnd_below(2)) {
                t = model[(p - area) / GRANULE];
            }
            want = model_faults(area, p, len, t);
            v = FAULTS(peek_n(with_tag(p, t), len));
            if (v != want) {
                rnd_fail("cross-page-fault", with_tag(p, t), v, want);
            }
            break;
        case OP_TS_LOAD:
            /* data load from the tag bytes of T */
            len = 1 << rnd_below(4);
            q = rnd_window + rnd_below(RND_GRANULES / 2 - len + 1);
            v = peek_n(q, len);
            want = model_bytes(area, q, len);
            if (v != want) {
                rnd_fail("ts-load", q, v, want);
            }
            break;
        case OP_TS_STORE:
            /* data store to the tag bytes of T: they are its tags */
            len = 1 << rnd_below(4);
            q = rnd_window + rnd_below(RND_GRANULES / 2 - len + 1);
            v = rnd();
            poke_n(q, len, v);
            for (unsigned i = 0; i < len; i++) {
                uint64_t m = (tagged_of(q + i) - area) / GRANULE;
                uint8_t b = v >> (8 * i);

                model[m] = b & 15;
                model[m + 1] = b >> 4;
            }
            break;
        case OP_TS_EDGE:
            /* the first and last carveout bytes: the tags of RAM's edges */
            q = rnd_below(2) ? cv_last : carveout;
            v = rnd() & 0xff;
            poke8(q, v);
            model_edge[q == carveout ? 0 : 2] = v & 15;
            model_edge[q == carveout ? 1 : 3] = v >> 4;
            want = q == carveout ?
                   model_edge[0] | model_edge[1] << 4 :
                   model_edge[2] | model_edge[3] << 4;
            if (peek8(q) != want) {
                rnd_fail("ts-edge-data", q, peek8(q), want);
            }
            if (ldg(ram_base) != model_edge[0] ||
                ldg(ram_base + GRANULE) != model_edge[1] ||
                ldg(ram_last - GRANULE) != model_edge[2] ||
                ldg(ram_last) != model_edge[3]) {
                rnd_fail("ts-edge-ldg", q, ldg(ram_last), model_edge[3]);
            }
            break;
        case OP_TS_TAGGED:
            /* a Tagged access to tag storage: untagged, never faults */
            q = rnd_window + rnd_below(RND_GRANULES / 2);
            p = ALIAS_VA + (q - 0x40000000ull);
            stg(with_tag(p & ~(GRANULE - 1ull), t));
            if (ldg(p) != 0) {
                rnd_fail("ts-tagged-ldg", p, ldg(p), 0);
            }
            v = 0;
            len = FAULTS(v = peek_n(with_tag(p, t), 1));
            if (len) {
                rnd_fail("ts-tagged-fault", p, 1, 0);
            }
            want = model_bytes(area, q, 1);
            if (v != want) {
                rnd_fail("ts-tagged-data", p, v, want);
            }
            break;
        }
    }

    for (int i = 0; i < OP__MAX; i++) {
        puts_uart("# ");
        puts_uart(op_name[i]);
        puts_uart(" ");
        put_dec(counts[i]);
        puts_uart("\n");
    }
    puts_uart("# random ops done ");
    put_dec(rnd_op);
    puts_uart("\n");
    check("random-ops", !rnd_failed && rnd_op == ops);
}

/*
 * tag-storage-interleave=on: a kernel that assumes the tags of a block's
 * memory are linear in the block finds other pages' tags there.
 */
static uint64_t block_data(void)
{
    /* the memory of one whole tag storage block, in the middle of RAM */
    uint64_t len = (PAGE / 32) << interleave_bits << 5;

    return ram_middle() + 16 * len;
}

static void test_interleave(void)
{
    uint64_t b = block_data(), p1 = b + PAGE;
    uint64_t linear = carveout + (p1 - ram_base) / 32;

    stg(with_tag(p1, 0xc));
    check("interleave-moved", tag_byte(p1) != linear &&
          (peek8(tag_byte(p1)) & 0xf) == 0xc);
    /* data written where a linear layout puts p1's tag misses it */
    poke8(linear, 0x33);
    check("interleave-linear-misses", ldg(p1) == 0xc);
    /* ... and is the tag of another page of the block */
    check_eq("interleave-linear-hits", ldg(tagged_of(linear)), 3);
}

/*
 * With the reuse checker: the tags of the page at the middle of a block
 * lie in the first half of the block, which a kernel assuming a linear
 * layout believes to hold the tags of the first half of the memory only.
 * Reading that half as data, once the middle page is tagged, breaks R2
 * exactly once.
 */

static void interleave_check_scenario(void)
{
    uint64_t b = block_data();
    uint64_t len = (PAGE / 32) << interleave_bits;
    uint64_t mid = b + len * 32 / 2, half = carveout + (b - ram_base) / 32;
    uint64_t v = 0, sum = 0;

    MAILBOX[10] = INSN_ADDR(interleave_culprit_insn);
    asm volatile(".globl interleave_culprit_insn\n"
                 "interleave_culprit_insn: stg %0, [%0]"
                 :: "r"(with_tag(mid, 5)) : "memory");
    check("interleave-mid-in-first-half",
          tag_byte(mid) >= half && tag_byte(mid) < half + len / 2);
    MAILBOX[6] = INSN_ADDR(interleave_r2_insn);
    for (uint64_t a = half; a < half + len / 2; a += 8) {
        asm volatile(".globl interleave_r2_insn\n"
                     "interleave_r2_insn: ldr %0, [%1]"
                     : "=r"(v) : "r"(a) : "memory");
        sum += v;
    }
    check_eq("interleave-half-read", sum, 5);
    host_stage(40);
}

/*
 * Snapshots and migration (FLAG_PERSIST): tags from a seeded generator on
 * 1 MiB, then stage 20, where the host saves the VM (savevm, or migration
 * to another QEMU).  After it the guest verifies every tag and that tag
 * checks still work.  On the first pass (MAILBOX[7] == 0) it then writes
 * other tags and reaches stage 21, where the host may load the snapshot:
 * the guest is back in stage 20 with the first tags, and verifies again.
 */
#define PERSIST_LEN     (1024 * 1024)

static void persist_fill(uint64_t a, uint64_t seed)
{
    rnd_state = seed;
    for (uint64_t p = a; p < a + PERSIST_LEN; p += GRANULE) {
        stg(with_tag(p, rnd() & 15));
    }
}

static int persist_verify(uint64_t a, uint64_t seed)
{
    int ok = 1;

    rnd_state = seed;
    for (uint64_t p = a; p < a + PERSIST_LEN; p += GRANULE) {
        ok &= ldg(p) == (rnd() & 15);
    }
    return ok;
}

static void persist_scenario(void)
{
    uint64_t a = ram_middle() + 0x100000;
    uint64_t g = a + 0x12340 / GRANULE * GRANULE;
    uint64_t sec = SECURE_RAM + 0x100000;
    int secure = MAILBOX[0] & FLAG_SECURE;

    persist_fill(a, 0x5eed);
    if (secure) {
        /* tags in the hidden secure tag memory */
        persist_fill(sec, 0x5ec);
    }
    host_stage(20);
    check("persist-tags", persist_verify(a, 0x5eed));
    if (secure) {
        check("persist-secure-tags", persist_verify(sec, 0x5ec));
    }
    check("persist-checks",
          !FAULTS(load64(with_tag(g, ldg(g)))) &&
          FAULTS(load64(with_tag(g, ldg(g) + 1))));
    if (!MAILBOX[7]) {
        persist_fill(a, 0xbad);
        if (secure) {
            persist_fill(sec, 0xbad);
        }
        host_stage(21);
        check("persist-scrambled", !persist_verify(a, 0x5eed) &&
              (!secure || !persist_verify(sec, 0x5ec)));
    }
}

/*
 * Reset (FLAG_RESET): tags on 1 MiB and a function in the carveout that
 * returns 1, run once so that QEMU translates it; stage 30, where the
 * host resets the machine and sets MAILBOX[7].  The program starts again
 * and checks that the reset cleared the carveout: tags read 0, and the
 * function's bytes are gone, so calling it runs zeros (an undefined
 * instruction) rather than stale translated code.
 */
static void reset_scenario(void)
{
    uint64_t a = ram_middle() + 0x100000;
    uint64_t code = carveout + ram_size / 32 - 3 * PAGE;

    persist_fill(a, 0x5eed);
    write_code(code, 0x52800020);       /* movz w0, #1 */
    check_eq("reset-before-exec", ((fn_t)code)(), 1);
    host_stage(30);
    check("reset-not-reached", 0);
}

static void test_after_reset(void)
{
    uint64_t a = ram_middle() + 0x100000;
    uint64_t code = carveout + ram_size / 32 - 3 * PAGE;
    uint64_t r;
    int zero = 1;

    for (uint64_t p = a; p < a + PERSIST_LEN; p += GRANULE) {
        zero &= ldg(p) == 0;
    }
    check("reset-tags-zero", zero);
    check_eq("reset-code-bytes-zero", peek8(code) | peek8(code + 4), 0);
    expect_undef = 1;
    /* zeros fault at once, leaving the argument in w0; stale code: 1 */
    r = ((int (*)(int))code)(0x1234);
    check("reset-no-stale-code", !expect_undef && r == 0x1234);
}

/*
 * Tag-heavy microbenchmarks for bench/: one loop over a 32 MiB buffer,
 * @passes times, then power off through PSCI so that the host can time
 * the whole run.  Case 9 zeroes data in the carveout instead, its last
 * BENCH_CARVEOUT_LEN bytes (the tags of the end of RAM, which nothing
 * here accesses), as a reuse kernel's clear_page does there.
 */
#define BENCH_LEN           (32ull << 20)
#define BENCH_CARVEOUT_LEN  (1ull << 20)

static void bench(uint64_t which, uint64_t passes)
{
    uint64_t b = ram_base + (64ull << 20), sum = 0;
    uint64_t len = BENCH_LEN;

    if (which == 9) {
        b = carveout + ram_size / 32 - BENCH_CARVEOUT_LEN;
        len = BENCH_CARVEOUT_LEN;
    }
    for (uint64_t n = 0; n < passes; n++) {
        for (uint64_t p = b; p < b + len; p += 256) {
            switch (which) {
            case 0:     /* STG, one granule at a time */
                for (int i = 0; i < 256; i += 16) {
                    stg(with_tag(p + i, n));
                }
                break;
            case 1:     /* ST2G */
                for (int i = 0; i < 256; i += 32) {
                    st2g(with_tag(p + i, n));
                }
                break;
            case 2:     /* STGM, a GMID block (256 bytes on -cpu max) */
                stgm(p, n * 0x1111111111111111ull);
                break;
            case 3:     /* DC GZVA, 64-byte blocks */
                for (int i = 0; i < 256; i += 64) {
                    dc_gzva(with_tag(p + i, n));
                }
                break;
            case 4:     /* SETG* */
                setg(with_tag(p, n), 256, 0);
                break;
            case 5:     /* tag-checked loads */
                for (int i = 0; i < 256; i += 16) {
                    sum += load64(p + i);
                }
                break;
            case 6:     /* tag-checked stores */
                for (int i = 0; i < 256; i += 16) {
                    store64(p + i, n);
                }
                break;
            case 7:     /* LDG scan */
                for (int i = 0; i < 256; i += 16) {
                    sum += ldg(p + i);
                }
                break;
            case 8:     /* mixed: tag, store, load, read the tag back */
                for (int i = 0; i < 256; i += 16) {
                    uint64_t q = with_tag(p + i, n + i / 16);

                    stg(q);
                    store64(q, i);
                    sum += load64(q) + ldg(q);
                }
                break;
            case 9:     /* DC ZVA of carveout data, 64-byte blocks */
                for (int i = 0; i < 256; i += 64) {
                    dc_zva(p + i);
                }
                break;
            }
        }
    }
    check("bench", sum != 1);  /* keep the loads */
    /* under -icount, virtual time counts the instructions run */
    asm volatile("isb; mrs %0, cntvct_el0" : "=r"(sum));
    puts_uart("# cntvct ");
    put_hex(sum);
    puts_uart("\nRESULT pass=1 fail=0\nEND\n");
    asm volatile("mov x0, %0; hvc #0" :: "r"(0x84000008ull) : "x0");
}

int main(void)
{
    *UART_CR = 0x301;           /* UARTEN | TXE | RXE */
    if ((MAILBOX[0] & ~0xffffull) != MAILBOX_MAGIC) {
        puts_uart("not ok mailbox\nRESULT pass=0 fail=1\nEND\n");
        return 1;
    }
    tag_storage = MAILBOX[0] & FLAG_TAG_STORAGE;
    if (MAILBOX[0] & FLAG_INTERLEAVE) {
        interleave_bits = __builtin_ctzll(MAILBOX[8]) - 7;
    }
    ram_base = MAILBOX[1];
    ram_size = MAILBOX[2];
    carveout = MAILBOX[3];
    puts_uart(tag_storage ? "# tag-storage=on\n" : "# tag-storage=off\n");

    mmu_tables();
    mmu_on();
    if (MAILBOX[0] & FLAG_BENCH) {
        bench(MAILBOX[4], MAILBOX[5]);
    } else if (MAILBOX[0] & FLAG_GDB) {
        gdb_scenario();
    } else if (MAILBOX[0] & FLAG_FAULT_STOP) {
        fault_stop_scenario();
    } else if (MAILBOX[0] & FLAG_R4) {
        r4_scenario();
    } else if (MAILBOX[0] & FLAG_SMP) {
        smp_scenario();
    } else if (MAILBOX[0] & FLAG_CHECK && interleave_bits) {
        interleave_check_scenario();
    } else if (MAILBOX[0] & FLAG_CHECK) {
        check_scenario();
    } else if (MAILBOX[0] & FLAG_RANDOM) {
        random_test(MAILBOX[4], MAILBOX[5]);
    } else if (MAILBOX[0] & FLAG_PERSIST) {
        persist_scenario();
    } else if (MAILBOX[0] & FLAG_RESET) {
        if (MAILBOX[7]) {
            test_after_reset();
        } else {
            reset_scenario();
        }
    } else {
        run_tests();
    }
    puts_uart("RESULT pass=");
    put_dec(passes);
    puts_uart(" fail=");
    put_dec(failures);
    puts_uart("\nEND\n");
    return 0;
}
