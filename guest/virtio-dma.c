/*
 * /virtio-dma of the Linux test guest (guest/tests/dma.sh): device DMA
 * into and out of the MTE tag storage carveout must work and be
 * byte-exact.  /init runs it when the kernel command line has "mts.dma".
 *
 * The machine: -M virt,mte=on,tag-storage=on,tag-storage-binding=v1 (the
 * carveout is in no /memory node, so /dev/mem maps it), -global
 * virtio-mmio.force-legacy=false and two 16 MiB virtio-blk disks that the
 * host filled with a pattern: a virtio-blk-device (virtio-mmio), which no
 * kernel driver claims since virtio_mmio is never loaded, and a
 * virtio-blk-pci, which the kernel drives as /dev/vda once the modules in
 * /lib/modules are loaded (the cloud kernel has no built-in virtio).
 *
 * 1. O_DIRECT I/O from a /dev/mem mapping of the carveout: Debian's 6.1
 *    refuses it with EFAULT (errno 14), the mapping being VM_PFNMAP|VM_IO
 *    that get_user_pages() will not pin; reported as a "#" line.
 * 2. So a small virtio driver in user space drives the virtio-mmio disk
 *    through /dev/mem, its virtqueue, request headers, status bytes and
 *    data buffers all in the carveout: batches of 8 requests of 64 KiB in
 *    flight read the host's pattern into the carveout, write a pattern
 *    from the carveout to disk, and read that back.
 * 3. With "mts.dma=stg", one 512-byte write to disk takes its first byte
 *    from the tag storage of a page whose last two granules were tagged
 *    0x5 and 0xa by STG (the byte 0xa5), the rest from data: a DMA read of
 *    exactly one tag-owned byte, i.e. one R2 for the reuse checker.
 * 4. The kernel path: 4 threads doing O_DIRECT pread/pwrite of 64 KiB on
 *    /dev/vda through tagged pointers to PROT_MTE pages; the tags must
 *    survive the DMA.
 *
 * Disk contents (guest/tests/dma.sh checks the images after power-off):
 * the 64-bit little-endian word at byte offset o is pattern(seed, o).
 *   virtio-mmio disk, filled with SEED_A: [0, 2M) read and checked;
 *     [8M, 10M) written with SEED_W and read back; with mts.dma=stg,
 *     [12M, 12M + 512) is pattern(SEED_S) with its first byte 0xa5.
 *   /dev/vda, filled with SEED_B: [t M, t M + 1M) read and checked by
 *     thread t; [8M + t M, 9M + t M) written with SEED_K and read back.
 *
 * Output: "ok <name>" / "not ok <name>", "# " comments, then
 * "RESULT pass=<n> fail=<n>" and PASS/FAIL.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "carveout.h"
#include "mte.h"

#define MiB (1024UL * 1024)

/* Disk layout and seeds, shared with guest/tests/dma.sh */
#define SEED_A 0xa1
#define SEED_W 0xb2
#define SEED_B 0xc3
#define SEED_K 0xd4
#define SEED_S 0xe5
#define MMIO_READ_OFF 0
#define MMIO_READ_LEN (2 * MiB)
#define MMIO_WRITE_OFF (8 * MiB)
#define MMIO_WRITE_LEN (2 * MiB)
#define STG_DISK_OFF (12 * MiB)
#define DISK_SIZE (16 * MiB)
#define VDA_WRITE_OFF (8 * MiB)
#define DEVMEM_TRY_OFF (15 * MiB)
#define THREADS 4
#define KBUF (64 * 1024UL)

/* virtio-mmio (version 2) registers */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC 0x080
#define VIRTIO_MMIO_QUEUE_AVAIL 0x090
#define VIRTIO_MMIO_QUEUE_USED 0x0a0
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976     /* "virt" */
#define VIRTIO_ID_BLOCK 2
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1

/*
 * The DMA area: 1 MiB of the carveout, mapped through /dev/mem (as Device
 * memory: only aligned accesses, hence no memcpy or memset on it).
 */
#define QSIZE 32                    /* descriptors; 4 per request */
#define NREQ 8                      /* requests in flight per batch */
#define DESC_OFF 0x0
#define AVAIL_OFF 0x400
#define USED_OFF 0x800
#define HDR_OFF 0x1000              /* 16 bytes per request */
#define STATUS_OFF 0x1800           /* 1 byte per request */
#define BUF_OFF 0x10000             /* NREQ buffers of 64 KiB */
#define BUF_LEN (64 * 1024UL)
#define SCRATCH_OFF (BUF_OFF + NREQ * BUF_LEN)
#define AREA_LEN MiB

static int passes, failures;

static void check(const char *name, int ok)
{
    printf("%s %s\n", ok ? "ok" : "not ok", name);
    ok ? passes++ : failures++;
}

static uint64_t pattern(uint64_t seed, uint64_t off)
{
    uint64_t x = ((off >> 3) ^ (seed << 40)) * 0x9e3779b97f4a7c15ULL + seed;

    return x ^ (x >> 31);
}

/* @p may be Device memory (volatile: aligned 64-bit accesses only) */
static void fill(volatile uint64_t *p, size_t len, uint64_t seed,
                 uint64_t off)
{
    for (size_t i = 0; i < len / 8; i++) {
        p[i] = pattern(seed, off + 8 * i);
    }
}

/* Offset of the first word that is not the pattern, or -1 (as fill()) */
static long verify(volatile uint64_t *p, size_t len, uint64_t seed,
                   uint64_t off)
{
    for (size_t i = 0; i < len / 8; i++) {
        if (p[i] != pattern(seed, off + 8 * i)) {
            return 8 * i;
        }
    }
    return -1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1000000000.0;
}

static uint64_t pa_of(void *p)
{
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0) {
        return 0;
    }
    if (pread(fd, &e, 8, ((uintptr_t)p & ADDR_MASK) / PAGE * 8) != 8) {
        e = 0;
    }
    close(fd);
    return (e & (1ULL << 63)) ? (e & ((1ULL << 55) - 1)) * PAGE : 0;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "not ok dma-unexpected-segv code=%d addr=%p\n",
             si->si_code, si->si_addr);
    write(1, msg, strlen(msg));
    _exit(4);       /* no RESULT line: the run fails */
}

/* ---- device tree ---- */

/* read_file() and be64() come from carveout.h */

/* The "reg" of the first root node named @prefix... (and compatible @compat) */
static int dt_reg(const char *prefix, const char *compat, int nth,
                  uint64_t *base, uint64_t *size)
{
    DIR *d = opendir("/proc/device-tree");
    struct dirent *e;
    char path[600], buf[64];
    unsigned char reg[16];
    int found = 0;

    while (d && !found && (e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/device-tree/%s/compatible",
                 e->d_name);
        if (compat && (read_file(path, buf, sizeof(buf)) <= 0 ||
                       strcmp(buf, compat))) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/device-tree/%s/reg", e->d_name);
        if (read_file(path, reg, 16) == 16 && nth-- == 0) {
            *base = be64(reg);
            *size = be64(reg + 8);
            found = 1;
        }
    }
    if (d) {
        closedir(d);
    }
    return found;
}

/* ---- the user-space virtio-mmio block driver ---- */

typedef struct Seg {
    uint64_t pa;
    uint32_t len;
} Seg;

typedef struct Req {
    uint32_t type;
    uint64_t sector;
    int nseg;
    Seg seg[2];
} Req;

typedef struct Vdev {
    volatile uint32_t *regs;        /* volatile: the device's registers */
    volatile uint8_t *area;         /* the DMA area in the carveout */
    uint64_t area_pa;
    uint64_t capacity;              /* sectors */
    uint16_t avail_idx, used_idx;
    int broken;                     /* reset before the next use */
} Vdev;

static uint32_t rd(Vdev *d, unsigned reg)
{
    return d->regs[reg / 4];
}

static void wr(Vdev *d, unsigned reg, uint32_t v)
{
    d->regs[reg / 4] = v;
}

static void wr64(Vdev *d, unsigned reg, uint64_t v)
{
    wr(d, reg, v);
    wr(d, reg + 4, v >> 32);
}

/* A field in the DMA area (volatile: Device memory, seen by the device) */
#define AREA(d, type, off) (*(volatile type *)((d)->area + (off)))

/* The 64-bit words at @off of the DMA area */
static volatile uint64_t *words(Vdev *d, unsigned long off)
{
    return &AREA(d, uint64_t, off);
}

/* Map the virtio-mmio transport of the block device; 0 if there is none */
static int vdev_find(Vdev *d, int memfd)
{
    uint64_t base, size;

    for (int n = 0; dt_reg("virtio_mmio@", NULL, n, &base, &size); n++) {
        uint64_t off = base & (PAGE - 1);
        uint8_t *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
                          memfd, base - off);

        if (m == MAP_FAILED) {
            printf("# mmap of virtio-mmio at 0x%llx: %s\n",
                   (unsigned long long)base, strerror(errno));
            return 0;
        }
        d->regs = (void *)(m + off);
        if (rd(d, VIRTIO_MMIO_MAGIC) == VIRTIO_MAGIC &&
            rd(d, VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_BLOCK) {
            printf("# virtio-mmio block device at 0x%llx, version %u\n",
                   (unsigned long long)base, rd(d, VIRTIO_MMIO_VERSION));
            return rd(d, VIRTIO_MMIO_VERSION) == 2;
        }
        munmap(m, PAGE);
    }
    return 0;
}

/* Reset the device and set up queue 0 in the DMA area; 0 on failure */
static int vdev_init(Vdev *d)
{
    uint32_t s = S_ACKNOWLEDGE | S_DRIVER;

    wr(d, VIRTIO_MMIO_STATUS, 0);
    while (rd(d, VIRTIO_MMIO_STATUS) != 0) {
        /* the reset is done when the status reads 0 */
    }
    wr(d, VIRTIO_MMIO_STATUS, S_ACKNOWLEDGE);
    wr(d, VIRTIO_MMIO_STATUS, s);
    wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    if (!(rd(d, VIRTIO_MMIO_DEVICE_FEATURES) & 1)) {
        printf("# no VIRTIO_F_VERSION_1\n");
        return 0;
    }
    /* VIRTIO_F_VERSION_1 and nothing else */
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 0);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    s |= S_FEATURES_OK;
    wr(d, VIRTIO_MMIO_STATUS, s);
    if (!(rd(d, VIRTIO_MMIO_STATUS) & S_FEATURES_OK)) {
        printf("# FEATURES_OK refused\n");
        return 0;
    }
    wr(d, VIRTIO_MMIO_QUEUE_SEL, 0);
    if (rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX) < QSIZE) {
        printf("# queue too small\n");
        return 0;
    }
    for (unsigned off = 0; off < BUF_OFF; off += 8) {
        AREA(d, uint64_t, off) = 0;
    }
    AREA(d, uint16_t, AVAIL_OFF) = VRING_AVAIL_F_NO_INTERRUPT;
    wr(d, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    wr64(d, VIRTIO_MMIO_QUEUE_DESC, d->area_pa + DESC_OFF);
    wr64(d, VIRTIO_MMIO_QUEUE_AVAIL, d->area_pa + AVAIL_OFF);
    wr64(d, VIRTIO_MMIO_QUEUE_USED, d->area_pa + USED_OFF);
    wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
    s |= S_DRIVER_OK;
    wr(d, VIRTIO_MMIO_STATUS, s);
    d->capacity = rd(d, VIRTIO_MMIO_CONFIG) |
                  (uint64_t)rd(d, VIRTIO_MMIO_CONFIG + 4) << 32;
    d->avail_idx = d->used_idx = 0;
    d->broken = 0;
    return 1;
}

static void set_desc(Vdev *d, unsigned i, uint64_t pa, uint32_t len,
                     uint16_t flags, uint16_t next)
{
    unsigned off = DESC_OFF + 16 * i;

    AREA(d, uint64_t, off) = pa;
    AREA(d, uint32_t, off + 8) = len;
    AREA(d, uint16_t, off + 12) = flags;
    AREA(d, uint16_t, off + 14) = next;
}

/* Make @n requests available at once, then notify the device once */
static void vdev_submit(Vdev *d, Req *r, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned h = 4 * i, k = h;
        uint16_t w = r[i].type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0;

        AREA(d, uint32_t, HDR_OFF + 16 * i) = r[i].type;
        AREA(d, uint32_t, HDR_OFF + 16 * i + 4) = 0;
        AREA(d, uint64_t, HDR_OFF + 16 * i + 8) = r[i].sector;
        AREA(d, uint8_t, STATUS_OFF + i) = 0xff;
        set_desc(d, k, d->area_pa + HDR_OFF + 16 * i, 16, VRING_DESC_F_NEXT,
                 k + 1);
        for (int s = 0; s < r[i].nseg; s++) {
            k++;
            set_desc(d, k, r[i].seg[s].pa, r[i].seg[s].len,
                     VRING_DESC_F_NEXT | w, k + 1);
        }
        k++;
        set_desc(d, k, d->area_pa + STATUS_OFF + i, 1, VRING_DESC_F_WRITE, 0);
        AREA(d, uint16_t, AVAIL_OFF + 4 + 2 * ((d->avail_idx + i) % QSIZE)) =
            h;
    }
    asm volatile("dmb sy" : : : "memory");
    d->avail_idx += n;
    AREA(d, uint16_t, AVAIL_OFF + 2) = d->avail_idx;
    asm volatile("dsb sy" : : : "memory");
    wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Wait for the @n requests of the last vdev_submit(); returns the failed */
static int vdev_wait(Vdev *d, Req *r, int n)
{
    double deadline = now() + 60;
    int bad = 0;

    while ((uint16_t)(AREA(d, uint16_t, USED_OFF + 2) - d->used_idx) < n) {
        if (rd(d, VIRTIO_MMIO_STATUS) & S_NEEDS_RESET) {
            printf("# the device set DEVICE_NEEDS_RESET (status 0x%x) with "
                   "%d of %d requests done\n", rd(d, VIRTIO_MMIO_STATUS),
                   (uint16_t)(AREA(d, uint16_t, USED_OFF + 2) - d->used_idx),
                   n);
            d->broken = 1;
            return n;
        }
        if (now() > deadline) {
            printf("# timeout waiting for the device\n");
            d->broken = 1;
            return n;
        }
        usleep(100);
    }
    asm volatile("dmb sy" : : : "memory");
    for (int i = 0; i < n; i++) {
        unsigned u = USED_OFF + 4 + 8 * ((d->used_idx + i) % QSIZE);
        uint32_t id = AREA(d, uint32_t, u), len = AREA(d, uint32_t, u + 4);
        uint32_t want = 1;
        int j = id / 4;

        if (id % 4 || j >= n) {
            printf("# bad used id %u\n", id);
            bad++;
            continue;
        }
        for (int s = 0; r[j].type == VIRTIO_BLK_T_IN && s < r[j].nseg; s++) {
            want += r[j].seg[s].len;
        }
        if (AREA(d, uint8_t, STATUS_OFF + j) != 0 || len != want) {
            printf("# request %d (sector %llu): status %u, used length %u "
                   "(expected %u)\n", j, (unsigned long long)r[j].sector,
                   AREA(d, uint8_t, STATUS_OFF + j), len, want);
            bad++;
        }
    }
    d->used_idx += n;
    return bad;
}

/*
 * Read (@write 0) or write [@off, @off + @len) of the disk in batches of
 * NREQ requests of BUF_LEN in flight, the data in the carveout; the data
 * is pattern(@seed).  Returns the number of bad requests and bad buffers.
 */
static int mmio_transfer(Vdev *d, int write, uint64_t off, uint64_t len,
                         uint64_t seed)
{
    int bad = 0;

    if (d->broken && !vdev_init(d)) {
        return 1;
    }
    for (uint64_t b = 0; b < len && !d->broken; b += NREQ * BUF_LEN) {
        Req r[NREQ];
        int n;

        for (n = 0; n < NREQ && b + n * BUF_LEN < len; n++) {
            uint64_t o = off + b + n * BUF_LEN;
            if (write) {
                fill(words(d, BUF_OFF + n * BUF_LEN), BUF_LEN, seed, o);
            } else {
                /* not what the disk holds */
                fill(words(d, BUF_OFF + n * BUF_LEN), BUF_LEN, 0x5a, 0);
            }
            r[n] = (Req) {
                .type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
                .sector = o / 512, .nseg = 1,
                .seg = { { d->area_pa + BUF_OFF + n * BUF_LEN, BUF_LEN } },
            };
        }
        vdev_submit(d, r, n);
        bad += vdev_wait(d, r, n);
        for (int i = 0; !write && !d->broken && i < n; i++) {
            uint64_t o = off + b + i * BUF_LEN;
            long at = verify(words(d, BUF_OFF + i * BUF_LEN), BUF_LEN, seed,
                             o);

            if (at >= 0) {
                printf("# disk offset 0x%llx read into the carveout at "
                       "0x%llx differs\n", (unsigned long long)(o + at),
                       (unsigned long long)(d->area_pa + BUF_OFF +
                                            i * BUF_LEN + at));
                bad++;
            }
        }
    }
    return bad + d->broken;
}

/*
 * One 512-byte write whose first byte is the tag storage byte of granules
 * 254 and 255 of @page (tagged 0x5 and 0xa by STG): the device reads one
 * tag-owned byte, the other 511 come from data in the scratch buffer.
 * Then the sector is read back into the carveout and checked.
 */
static __attribute__((noinline)) void mmio_stg(Vdev *d, char *page,
                                               uint64_t page_pa,
                                               uint64_t tag_pa)
{
    volatile uint64_t *scratch = words(d, SCRATCH_OFF);  /* see words() */
    Req r = {
        .type = VIRTIO_BLK_T_OUT, .sector = STG_DISK_OFF / 512, .nseg = 2,
        .seg = { { tag_pa + 127, 1 }, { d->area_pa + SCRATCH_OFF + 1, 511 } },
    };
    int ok;

    stg(with_tag(page + 254 * GRANULE, 0x5));
    stg(with_tag(page + 255 * GRANULE, 0xa));
    fill(scratch, 512, SEED_S, STG_DISK_OFF);
    printf("# stg: page 0x%llx, tags 0x5 0xa in granules 254 255 by STG: "
           "their tag byte at 0x%llx (R2 pa 0x%llx) to disk at 0x%lx by DMA\n",
           (unsigned long long)page_pa, (unsigned long long)(tag_pa + 127),
           (unsigned long long)(page_pa + 254 * GRANULE), STG_DISK_OFF);
    if (d->broken && !vdev_init(d)) {
        check("dma-mmio-stg-tag-to-disk", 0);
        return;
    }
    vdev_submit(d, &r, 1);
    check("dma-mmio-stg-tag-to-disk", vdev_wait(d, &r, 1) == 0);

    /* read it back: 0xa5 then the pattern */
    fill(scratch, 512, 0x5a, 0);
    r = (Req) {
        .type = VIRTIO_BLK_T_IN, .sector = STG_DISK_OFF / 512, .nseg = 1,
        .seg = { { d->area_pa + SCRATCH_OFF, 512 } },
    };
    if (d->broken && !vdev_init(d)) {
        check("dma-mmio-stg-readback", 0);
        return;
    }
    vdev_submit(d, &r, 1);
    ok = vdev_wait(d, &r, 1) == 0;
    ok &= scratch[0] == ((pattern(SEED_S, STG_DISK_OFF) & ~0xffULL) | 0xa5);
    ok &= verify(scratch + 1, 504, SEED_S, STG_DISK_OFF + 8) < 0;
    check("dma-mmio-stg-readback", ok);
    check("dma-mmio-stg-tags-intact", ldg(page + 254 * GRANULE) == 0x5 &&
          ldg(page + 255 * GRANULE) == 0xa);
}

static void test_mmio(int memfd, uint64_t ram_base, uint64_t ts_base,
                      uint64_t ts_size, int with_stg)
{
    Vdev dev = { 0 }, *d = &dev;
    char *page = map_mte(PAGE);
    uint64_t page_pa, tag_pa;
    void *m;

    /* the tagged page first: the DMA area must not hold its tags */
    stg(with_tag(page, 0));
    page_pa = pa_of(page);
    tag_pa = ts_base + (page_pa - ram_base) / 32;
    d->area_pa = ts_base + ts_size / 4;
    if (tag_pa + PAGE / 32 > d->area_pa && tag_pa < d->area_pa + AREA_LEN) {
        d->area_pa = ts_base + ts_size / 2;
    }
    m = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
             d->area_pa);
    check("dma-mmio-carveout-mapped", m != MAP_FAILED && page_pa);
    if (m == MAP_FAILED || !page_pa) {
        return;
    }
    d->area = m;
    check("dma-mmio-found", vdev_find(d, memfd));
    if (!d->regs) {
        return;
    }
    check("dma-mmio-init", vdev_init(d) && d->capacity == DISK_SIZE / 512);
    printf("# mmio: queue at 0x%llx, buffers 0x%llx-0x%llx in the carveout; "
           "%d requests of %lu KiB in flight\n",
           (unsigned long long)d->area_pa,
           (unsigned long long)(d->area_pa + BUF_OFF),
           (unsigned long long)(d->area_pa + SCRATCH_OFF - 1), NREQ,
           BUF_LEN / 1024);
    check("dma-mmio-read-into-carveout",
          mmio_transfer(d, 0, MMIO_READ_OFF, MMIO_READ_LEN, SEED_A) == 0);
    check("dma-mmio-write-from-carveout",
          mmio_transfer(d, 1, MMIO_WRITE_OFF, MMIO_WRITE_LEN, SEED_W) == 0);
    check("dma-mmio-readback",
          mmio_transfer(d, 0, MMIO_WRITE_OFF, MMIO_WRITE_LEN, SEED_W) == 0);
    if (with_stg) {
        mmio_stg(d, page, page_pa, tag_pa);
    }
    wr(d, VIRTIO_MMIO_STATUS, 0);
}

/* ---- the kernel's driver: O_DIRECT on /dev/vda ---- */

static void load_modules(void)
{
    char names[512] = "", path[80], *save = NULL;
    int ok = read_file("/lib/modules/order", names, sizeof(names) - 1) > 0;

    for (char *m = strtok_r(names, "\n", &save); m;
         m = strtok_r(NULL, "\n", &save)) {
        int fd;

        snprintf(path, sizeof(path), "/lib/modules/%s.ko", m);
        fd = open(path, O_RDONLY);
        if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) &&
                       errno != EEXIST)) {
            printf("# loading %s: %s\n", path, strerror(errno));
            ok = 0;
        }
        close(fd);
    }
    for (int i = 0; ok && access("/dev/vda", F_OK) && i < 200; i++) {
        usleep(50000);
    }
    check("dma-vda-present", ok && !access("/dev/vda", F_OK));
}

/* O_DIRECT to and from a /dev/mem mapping of the carveout */
static void try_odirect_devmem(int memfd, uint64_t pa)
{
    volatile uint64_t *m = mmap(NULL, PAGE,   /* volatile: Device memory */
                                PROT_READ | PROT_WRITE, MAP_SHARED, memfd,
                                pa);
    int fd = open("/dev/vda", O_RDWR | O_DIRECT);
    ssize_t n;

    if (m == MAP_FAILED || fd < 0) {
        check("dma-odirect-devmem-setup", 0);
        return;
    }
    /* what the disk holds there already, should the write go through */
    fill(m, PAGE, SEED_B, DEVMEM_TRY_OFF);
    n = pwrite(fd, (void *)m, PAGE, DEVMEM_TRY_OFF);
    printf("# O_DIRECT pwrite from a /dev/mem mapping of the carveout "
           "(0x%llx): %zd, errno %d (%s)\n", (unsigned long long)pa, n,
           n < 0 ? errno : 0, n < 0 ? strerror(errno) : "-");
    fill(m, PAGE, 0x5a, 0);
    n = pread(fd, (void *)m, PAGE, 0);
    printf("# O_DIRECT pread into a /dev/mem mapping of the carveout: "
           "%zd, errno %d (%s)\n", n, n < 0 ? errno : 0,
           n < 0 ? strerror(errno) : "-");
    if (n == PAGE) {
        check("dma-odirect-devmem-read", verify(m, PAGE, SEED_B, 0) < 0);
    }
    close(fd);
    munmap((void *)m, PAGE);
}

typedef struct Job {
    int t;
    int bad;
    char why[120];
} Job;

static void *kernel_job(void *opaque)
{
    Job *j = opaque;
    unsigned tag = 1 + j->t;
    char *raw = map_mte(2 * KBUF);
    uint64_t *w = with_tag(raw, tag), *r = with_tag(raw + KBUF, tag);
    int fd = open("/dev/vda", O_RDWR | O_DIRECT);

    if (!raw || fd < 0) {
        snprintf(j->why, sizeof(j->why), "setup: %s", strerror(errno));
        j->bad++;
        return NULL;
    }
    for (size_t off = 0; off < 2 * KBUF; off += GRANULE) {
        stg(with_tag(raw + off, tag));
    }
    for (uint64_t k = 0; k < MiB / KBUF; k++) {
        uint64_t o = VDA_WRITE_OFF + j->t * MiB + k * KBUF;

        fill(w, KBUF, SEED_K, o);
        if (pwrite(fd, w, KBUF, o) != KBUF) {
            snprintf(j->why, sizeof(j->why), "pwrite at 0x%llx: %s",
                     (unsigned long long)o, strerror(errno));
            j->bad++;
        }
    }
    for (uint64_t k = 0; k < 2 * MiB / KBUF; k++) {
        /* first the host's pattern, then what the writes above left */
        uint64_t o = k < MiB / KBUF ? j->t * MiB + k * KBUF :
                     VDA_WRITE_OFF + j->t * MiB + (k - MiB / KBUF) * KBUF;
        uint64_t seed = k < MiB / KBUF ? SEED_B : SEED_K;

        fill(r, KBUF, 0x5a, 0);
        if (pread(fd, r, KBUF, o) != KBUF || verify(r, KBUF, seed, o) >= 0) {
            snprintf(j->why, sizeof(j->why), "pread at 0x%llx: %s",
                     (unsigned long long)o, errno ? strerror(errno) :
                     "wrong data");
            j->bad++;
        }
    }
    for (size_t off = 0; off < 2 * KBUF; off += GRANULE) {
        if (ldg(raw + off) != tag) {
            snprintf(j->why, sizeof(j->why), "tag at +0x%zx now 0x%x", off,
                     ldg(raw + off));
            j->bad++;
            break;
        }
    }
    close(fd);
    return NULL;
}

static void test_kernel(void)
{
    pthread_t th[THREADS];
    Job job[THREADS];
    int bad = 0;

    check("dma-vda-tcf-sync",
          prctl(PR_SET_TAGGED_ADDR_CTRL, PR_TAGGED_ADDR_ENABLE |
                PR_MTE_TCF_SYNC | (0xfffeUL << PR_MTE_TAG_SHIFT), 0, 0,
                0) == 0);
    for (int t = 0; t < THREADS; t++) {
        job[t] = (Job) { .t = t };
        pthread_create(&th[t], NULL, kernel_job, &job[t]);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (job[t].bad) {
            printf("# thread %d: %d errors, last: %s\n", t, job[t].bad,
                   job[t].why);
        }
        bad += job[t].bad;
    }
    printf("# vda: %d threads, O_DIRECT 64 KiB from PROT_MTE pages with "
           "tagged pointers\n", THREADS);
    check("dma-vda-odirect-tagged", bad == 0);
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    uint64_t ram_base = 0, ram_size, ts_base = 0, ts_size = 0;
    char cmdline[512] = "";
    int memfd, have;

    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    read_file("/proc/cmdline", cmdline, sizeof(cmdline) - 1);
    printf("MTS guest: device DMA and the tag storage carveout\n");
    have = dt_reg("memory@", NULL, 0, &ram_base, &ram_size) &&
           (dt_reg("metadata@", "arm,mte-tag-storage", 0, &ts_base,
                   &ts_size) ||
            dt_reg("tag-storage@", "arm,mte-tag-storage", 0, &ts_base,
                   &ts_size));
    memfd = open("/dev/mem", O_RDWR | O_SYNC);
    check("dma-carveout-v1-v2", have && memfd >= 0);
    if (have && memfd >= 0) {
        printf("# carveout 0x%llx+0x%llx\n", (unsigned long long)ts_base,
               (unsigned long long)ts_size);
        load_modules();
        try_odirect_devmem(memfd, ts_base + ts_size / 4 + BUF_OFF);
        test_mmio(memfd, ram_base, ts_base, ts_size,
                  strstr(cmdline, "mts.dma=stg") != NULL);
        test_kernel();
    }
    printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
           failures || !passes ? "FAIL" : "PASS");
    return 0;
}
