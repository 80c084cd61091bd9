/*
 * /reuse-workload of the Linux test guest: makes a kernel that reuses
 * MTE tag storage (the arm,mte-tag-storage RFC) put data in the carveout
 * and then take carveout pages and blocks back for tags.  Started by
 * /init (mte-init.c) as "/reuse-workload THREADS[,pair|,merge]" when the
 * kernel command line has mts.reuse=THREADS[,pair|,merge];
 * guest/tests/reuse-kernel.sh runs it.
 *
 * 1. fill most of free memory with untagged data (a pattern of the page
 *    number), until the allocator puts some of it in the carveout, which
 *    the kernel gave it as MIGRATE_CMA memory; unmap the first part of
 *    the fill (never in the carveout) to make room again;
 * 2. mprotect(PROT_MTE) populated fill pages, carveout pages among them:
 *    the kernel must migrate those out of the carveout and reserve the tag
 *    blocks of the others; then tag them with IRG and STG.  Which pages
 *    and how many at a time: see choose_window() (pair and merge do what
 *    this port gets wrong);
 * 3. THREADS threads map and touch fresh PROT_MTE memory, tagging every
 *    granule with IRG and STG and storing data through the tagged
 *    pointers: the kernel reserves the tag blocks, migrating the data
 *    that the fill left in them;
 * 4. fill what is left with untagged data again: free carveout pages go
 *    to data, which must not be blocks that hold tags in use;
 * 5. check everything: the fill data (checksum before and after, and
 *    against the pattern, through tagged pointers where tagged), the tags
 *    with LDG, that no tagged page is in the carveout, the kernel's
 *    counters (/proc/vmstat deltas) and log.
 *
 * Output: "ok <name>" / "not ok <name>" per check; "SNAP <name>" at each
 * phase (with mts.snapack on the command line it then waits for a line
 * on the console, so that the host can look at tag storage while the
 * guest is quiet); "CARVEOUT-DATA <pfn> <n>" for the carveout pages that
 * hold fill data; "VMSTAT <name> <before> <after>"; "TAGGED <pfn> <n>"
 * for every page it tagged, still mapped at power-off, and "TAGDIGEST
 * <crc32> <pages>", the CRC-32 of those pages' tags in that order, packed
 * as tag storage packs them (two granules a byte, low nibble first);
 * then "RESULT pass=<n> fail=<n>" and PASS or FAIL, and power off (this
 * program is PID 1).
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/reboot.h>

#include "carveout.h"

#ifndef PROT_MTE
#define PROT_MTE 0x20
#endif
#ifndef PR_MTE_TCF_SYNC
#define PR_MTE_TCF_SYNC (1UL << 1)
#define PR_MTE_TAG_SHIFT 3
#endif

#define PAGE 4096UL
#define GRANULE 16UL
#define WORDS (PAGE / 8)
#define ADDR_MASK ((1UL << 56) - 1)
#define MIB (1UL << 20)

#define FILL_LEAVE_KB (40 * 1024)   /* stop filling at this MemFree */
#define REFILL_LEAVE_KB (24 * 1024) /* and filling again at this one */
#define FILL_FREE (256 * MIB)       /* then unmap this much of it again */
#define MPROTECT_LEN (32 * MIB)     /* the end of the fill: PROT_MTE */
#define TAGGED_LEN (96 * MIB)       /* fresh PROT_MTE memory */
#define MAX_THREADS 16

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int passes, failures;
static TagStorage ts;
static uint64_t cv_pfn, cv_end;     /* carveout, in page frames */
static int snapack;

static void check(const char *name, int ok)
{
    pthread_mutex_lock(&out_lock);
    printf("%s %s\n", ok ? "ok" : "not ok", name);
    fflush(stdout);
    ok ? passes++ : failures++;
    pthread_mutex_unlock(&out_lock);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "not ok unexpected-signal %d code=%d addr=%p\n",
             sig, si->si_code, si->si_addr);
    write(1, msg, strlen(msg));
    sync();
    reboot(RB_POWER_OFF);   /* no RESULT line: the run fails */
    _exit(4);
}

/* ---- MTE ---- */

static void *with_tag(void *p, unsigned tag)
{
    return (void *)(((uintptr_t)p & ADDR_MASK) |
                    ((uintptr_t)(tag & 15) << 56));
}

static unsigned ldg(void *p)
{
    uintptr_t r = (uintptr_t)p;

    asm volatile("ldg %0, [%0]" : "+r"(r) :: "memory");
    return (r >> 56) & 15;
}

/* a random tag (1 to 15: prctl excludes 0) on @p's granule; returns it */
static unsigned irg_stg(void *p)
{
    uintptr_t r;

    asm volatile("irg %0, %1\n\tstg %0, [%0]"
                 : "=&r"(r) : "r"(p) : "memory");
    return (r >> 56) & 15;
}

/* ---- the data pattern ---- */

#define PAT_PAGE 0xd6e8feb86659fd93ULL
#define PAT_WORD 0x9e3779b97f4a7c15ULL

#define ROTL1(c) ((c) << 1 | (c) >> 63)

/* write the pattern of page @page at @p; returns its checksum */
static uint64_t fill_page(uint64_t *p, uint64_t page)
{
    uint64_t w = page * PAT_PAGE, c = 0;

    for (unsigned j = 0; j < WORDS; j++, w += PAT_WORD) {
        p[j] = w;
        c = ROTL1(c) ^ w;
    }
    return c;
}

/*
 * Check @n pages at @p against the pattern of pages @page0...; with
 * @tags (a tag per granule) read through pointers carrying them.  Adds
 * each page's checksum (its words, each XORed into the checksum rotated
 * by one bit) to @sum; returns the number of pages that differ.
 */
static uint64_t check_pages(char *p, uint64_t n, uint64_t page0,
                            const uint8_t *tags, uint64_t *sum)
{
    uint64_t bad = 0;

    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = (page0 + i) * PAT_PAGE, diff = 0, c = 0;
        const uint8_t *t = tags ? tags + i * (PAGE / GRANULE) : NULL;
        char *q = p + i * PAGE;

        for (unsigned g = 0; g < PAGE / GRANULE; g++, e += 2 * PAT_WORD) {
            const uint64_t *d = t ? with_tag(q + g * GRANULE, t[g])
                                  : (void *)(q + g * GRANULE);
            uint64_t a = d[0], b = d[1];

            diff |= (a ^ e) | (b ^ (e + PAT_WORD));
            c = ROTL1(c) ^ a;
            c = ROTL1(c) ^ b;
        }
        bad += diff != 0;
        *sum += c;
    }
    return bad;
}

typedef struct Check {
    char *p;
    uint64_t n, page0;
    const uint8_t *tags;
    int ldg;                /* check_tags() instead of check_pages() */
    uint64_t bad, sum;
} Check;

/* tags of @n pages at @p that LDG does not read as @tags has them */
static uint64_t check_tags(char *p, uint64_t n, const uint8_t *tags)
{
    uint64_t bad = 0;

    for (uint64_t g = 0; g < n * PAGE / GRANULE; g++) {
        bad += ldg(p + g * GRANULE) != tags[g];
    }
    return bad;
}

static void *check_worker(void *arg)
{
    Check *c = arg;

    if (c->ldg) {
        c->bad = check_tags(c->p, c->n, c->tags);
    } else {
        c->bad = check_pages(c->p, c->n, c->page0, c->tags, &c->sum);
    }
    return NULL;
}

static int workers = 1;     /* threads for the checks: one per CPU */

/* check_pages(), or with @ldg check_tags(), on all CPUs */
static uint64_t check_par(char *p, uint64_t n, uint64_t page0,
                          const uint8_t *tags, uint64_t *sum, int ldg)
{
    Check c[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    uint64_t bad = 0;

    for (int i = 0; i < workers; i++) {
        uint64_t first = n * i / workers, end = n * (i + 1) / workers;

        c[i] = (Check) {
            .p = p + first * PAGE, .n = end - first, .page0 = page0 + first,
            .tags = tags ? tags + first * PAGE / GRANULE : NULL, .ldg = ldg,
        };
        if (pthread_create(&tid[i], NULL, check_worker, &c[i])) {
            check_worker(&c[i]);
            tid[i] = 0;
        }
    }
    for (int i = 0; i < workers; i++) {
        if (tid[i]) {
            pthread_join(tid[i], NULL);
        }
        bad += c[i].bad;
        *sum += c[i].sum;
    }
    return bad;
}

static uint64_t check_all(char *p, uint64_t n, uint64_t page0,
                          const uint8_t *tags, uint64_t *sum)
{
    return check_par(p, n, page0, tags, sum, 0);
}

static uint64_t check_ldg(char *p, uint64_t n, const uint8_t *tags)
{
    uint64_t unused = 0;

    return check_par(p, n, 0, tags, &unused, 1);
}

/* ---- the kernel's view ---- */

static long long meminfo(const char *key)
{
    char buf[4096], *p;
    int n = read_file("/proc/meminfo", buf, sizeof(buf) - 1);

    if (n <= 0) {
        return -1;
    }
    buf[n] = 0;
    p = strstr(buf, key);
    return p ? atoll(p + strlen(key)) : -1;
}

#define MAX_VM 64
typedef struct VmStat {
    int n;
    char name[MAX_VM][48];
    unsigned long long val[MAX_VM];
} VmStat;

/* the counters of the RFC and of migration and compaction */
static void vmstat(VmStat *v)
{
    static const char *const prefix[] = {
        "cma_", "pgmigrate_", "tag_storage_", "compact_", NULL
    };
    FILE *f = fopen("/proc/vmstat", "r");
    char name[48];
    unsigned long long val;

    v->n = 0;
    while (f && fscanf(f, "%47s %llu", name, &val) == 2 && v->n < MAX_VM) {
        for (int i = 0; prefix[i]; i++) {
            if (!strncmp(name, prefix[i], strlen(prefix[i]))) {
                strcpy(v->name[v->n], name);
                v->val[v->n++] = val;
            }
        }
    }
    if (f) {
        fclose(f);
    }
}

static long long lookup(const VmStat *v, const char *name)
{
    for (int i = 0; i < v->n; i++) {
        if (!strcmp(v->name[i], name)) {
            return v->val[i];
        }
    }
    return -1;      /* no such counter */
}

static long long delta(const VmStat *a, const VmStat *b, const char *name)
{
    long long x = lookup(a, name), y = lookup(b, name);

    return x < 0 || y < 0 ? -1 : y - x;
}

/* the kernel log, NUL-terminated (malloc'd) */
static char *dmesg(void)
{
    int len = klogctl(10, NULL, 0);     /* SYSLOG_ACTION_SIZE_BUFFER */
    char *buf = malloc(len > 0 ? len + 1 : 1);

    len = len > 0 ? klogctl(3, buf, len) : 0;   /* SYSLOG_ACTION_READ_ALL */
    buf[len > 0 ? len : 0] = 0;
    return buf;
}

/* ---- physical addresses ---- */

/* the page frames of @n pages at @p into @pfn (0: not present) */
static void pfns(void *p, uint64_t n, uint64_t *pfn)
{
    int fd = open("/proc/self/pagemap", O_RDONLY);
    off_t off = ((uintptr_t)p & ADDR_MASK) / PAGE * 8;

    if (fd < 0 || pread(fd, pfn, n * 8, off) != (ssize_t)(n * 8)) {
        memset(pfn, 0, n * 8);
    }
    for (uint64_t i = 0; i < n; i++) {
        pfn[i] = (pfn[i] >> 63) ? pfn[i] & ((1ULL << 55) - 1) : 0;
    }
    if (fd >= 0) {
        close(fd);
    }
}

static int in_carveout(uint64_t pfn)
{
    return pfn >= cv_pfn && pfn < cv_end;
}

static uint64_t count_carveout(const uint64_t *pfn, uint64_t n)
{
    uint64_t c = 0;

    for (uint64_t i = 0; i < n; i++) {
        c += in_carveout(pfn[i]);
    }
    return c;
}

/* "WHAT <pfn> <n>" for the runs of the pages of @pfn that @keep accepts */
static void print_runs(const char *what, const uint64_t *pfn, uint64_t n,
                       int (*keep)(uint64_t))
{
    uint64_t start = 0, len = 0;

    for (uint64_t i = 0; i <= n; i++) {
        int k = i < n && pfn[i] && keep(pfn[i]);

        if (k && len && pfn[i] == start + len) {
            len++;
            continue;
        }
        if (len) {
            printf("%s %llx %llu\n", what, (unsigned long long)start,
                   (unsigned long long)len);
        }
        start = k ? pfn[i] : 0;
        len = k;
    }
    fflush(stdout);
}

static int any_page(uint64_t pfn)
{
    return 1;
}

/* ---- the tag digest: CRC-32 (zlib's) of tags packed as tag storage ---- */

static uint32_t crc_table[256];

static uint32_t crc32_update(uint32_t crc, const uint8_t *b, size_t len)
{
    if (!crc_table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;

            for (int k = 0; k < 8; k++) {
                c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
            }
            crc_table[i] = c;
        }
    }
    crc = ~crc;
    while (len--) {
        crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

/* fold the tags (read with LDG) of the @n pages at @p into @crc */
static uint32_t digest_pages(uint32_t crc, char *p, uint64_t n)
{
    uint8_t packed[PAGE / GRANULE / 2];

    for (uint64_t i = 0; i < n; i++) {
        for (unsigned k = 0; k < sizeof(packed); k++) {
            char *g = p + i * PAGE + 2 * k * GRANULE;

            packed[k] = ldg(g) | ldg(g + GRANULE) << 4;
        }
        crc = crc32_update(crc, packed, sizeof(packed));
    }
    return crc;
}

/* ---- phases ---- */

/*
 * Tell the host where we are; with mts.snapack, wait (up to a minute)
 * for the line the host sends when it has looked at tag storage.
 */
static void snap(const char *name)
{
    struct pollfd pfd = { .fd = 0, .events = POLLIN };
    char buf[64];

    printf("SNAP %s\n", name);
    fflush(stdout);
    if (snapack && poll(&pfd, 1, 60000) == 1) {
        if (read(0, buf, sizeof(buf)) <= 0) {
            snapack = 0;
        }
    } else if (snapack) {
        printf("# no reply from the host to SNAP %s\n", name);
        snapack = 0;
    }
}

typedef struct Slice {
    char *p;
    uint64_t pages, page0;  /* page0: pattern page number of p */
    uint8_t *tags;          /* a tag per granule */
    uint64_t bad_tags, bad_data, sum;
} Slice;

/* Touch and tag a fresh PROT_MTE slice, store the pattern, check both */
static void *tag_slice(void *arg)
{
    Slice *s = arg;
    uint64_t granules = s->pages * PAGE / GRANULE;

    for (uint64_t g = 0; g < granules; g++) {
        char *q = s->p + g * GRANULE;
        uint64_t page = s->page0 + g * GRANULE / PAGE;
        uint64_t w = page * PAT_PAGE + (g * GRANULE % PAGE / 8) * PAT_WORD;
        unsigned t = irg_stg(q);
        volatile uint64_t *d = with_tag(q, t);

        s->tags[g] = t;
        d[0] = w;
        d[1] = w + PAT_WORD;
    }
    s->bad_tags = check_tags(s->p, s->pages, s->tags);
    s->bad_data = check_pages(s->p, s->pages, s->page0, s->tags, &s->sum);
    return NULL;
}

/*
 * Which fill pages to mprotect(PROT_MTE), from *first for *n pages, and
 * how; for each mode, what the port gets wrong without its precautions:
 * PLAIN  the last *n pages of the fill, every other page on its own.
 *        In one call, mprotect_fixup() would isolate the carveout pages
 *        first and migrate them at the end, and fail to reserve (-EBUSY)
 *        the tag block of any later page that is one of them (PAIR); a
 *        page at a time with no gap, each call would extend a VM_MTE vma
 *        (MERGE);
 * PAIR   a carveout page and a later page whose tag block it is, the
 *        closest such pair, in one call;
 * MERGE  a carveout page, the page before it and the 32 after it, a page
 *        at a time.
 * @pfn: the page frames of the fill pages, @lo to @hi the ones mapped.
 */
enum Mode { PLAIN, PAIR, MERGE };
static const char *const mode_text[] = {
    "", ", mprotect of a page and its tag block in one call",
    ", mprotect next to a PROT_MTE mapping",
};

static int choose_window(enum Mode mode, const uint64_t *pfn, uint64_t lo,
                         uint64_t hi, uint64_t *first, uint64_t *n)
{
    uint64_t tbase = ts.tagged_base / PAGE, max = *n;
    uint64_t bpages = ts.block_size > PAGE ? ts.block_size / PAGE : 1;
    uint64_t best_a = 0, best_b = 0;
    int64_t *idx;

    if (mode == PLAIN) {
        *first = hi - max;
        return 1;
    }
    idx = calloc(cv_end - cv_pfn + 1, sizeof(*idx));
    if (!idx || !ts.size) {
        free(idx);
        return 0;
    }
    /* the fill page of each carveout page, plus one (0: none) */
    for (uint64_t i = lo; i < hi; i++) {
        if (in_carveout(pfn[i])) {
            idx[pfn[i] - cv_pfn] = i + 1;
        }
    }
    for (uint64_t b = lo; b < hi; b++) {
        if (mode == MERGE && in_carveout(pfn[b]) && b > lo && b + 32 < hi) {
            best_a = b - 1;
            best_b = b + 32;
            break;
        }
        if (pfn[b] < tbase || pfn[b] >= tbase + ts.tagged_size / PAGE) {
            continue;
        }
        /* PAIR: the carveout pages before b that are its tag block */
        uint64_t b0 = (pfn[b] - tbase) / 32 / bpages * bpages;
        for (uint64_t t = b0; t < b0 + bpages; t++) {
            uint64_t a = idx[t] - 1;

            if (idx[t] && a < b && b - a < max &&
                (!best_b || b - a < best_b - best_a)) {
                best_a = a;
                best_b = b;
            }
        }
    }
    free(idx);
    if (!best_b) {
        return 0;
    }
    if (mode == PAIR) {
        printf("# pair: fill page %llu in the carveout (pfn 0x%llx) is the "
               "tag block of fill page %llu (pfn 0x%llx)\n",
               (unsigned long long)best_a, (unsigned long long)pfn[best_a],
               (unsigned long long)best_b, (unsigned long long)pfn[best_b]);
    }
    *first = best_a;
    *n = best_b - best_a + 1;
    return 1;
}

static void *map_anon(size_t len, int prot)
{
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    enum Mode mode = argc < 2 ? PLAIN : strstr(argv[1], ",pair") ? PAIR :
                     strstr(argv[1], ",merge") ? MERGE : PLAIN;
    char cmdline[1024] = "", name[64], *log;
    unsigned char reg[16];
    VmStat v0, v1;
    double t0 = now();

    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    read_file("/proc/cmdline", cmdline, sizeof(cmdline) - 1);
    snapack = strstr(cmdline, "mts.snapack") != NULL;
    if (snapack) {
        struct termios tio;

        if (tcgetattr(0, &tio) == 0) {
            tio.c_lflag &= ~(ECHO | ECHONL);
            tcsetattr(0, TCSANOW, &tio);
        }
    }
    if (threads < 1 || threads > MAX_THREADS) {
        threads = 1;
    }
    workers = sysconf(_SC_NPROCESSORS_ONLN);
    workers = workers < 1 ? 1 : workers > MAX_THREADS ? MAX_THREADS : workers;
    printf("MTS guest: tag storage reuse workload, %d thread%s%s\n", threads,
           threads > 1 ? "s" : "", mode_text[mode]);

    /* where the kernel was told tag storage is */
    if (read_file("/proc/device-tree/memory@40000000/reg", reg, 16) == 16) {
        ts.tagged_base = be64(reg);
        ts.tagged_size = be64(reg + 8);
    }
    check("reuse-dt-tag-storage",
          find_tag_storage("/proc/device-tree/reserved-memory", &ts) ||
          find_tag_storage("/proc/device-tree", &ts));
    cv_pfn = ts.base / PAGE;
    cv_end = (ts.base + ts.size) / PAGE;
    printf("LAYOUT tagged-ram 0x%llx+0x%llx tag-storage 0x%llx+0x%llx "
           "block-size 0x%x\n", (unsigned long long)ts.tagged_base,
           (unsigned long long)ts.tagged_size, (unsigned long long)ts.base,
           (unsigned long long)ts.size, ts.block_size);

    /* the kernel's own view: it manages the carveout, as CMA */
    log = dmesg();
    check("reuse-enabled",
          strstr(log, "MTE tag storage region management enabled") != NULL);
    free(log);
    printf("MEMINFO MemTotal %lld MemFree %lld CmaTotal %lld CmaFree %lld\n",
           meminfo("MemTotal:"), meminfo("MemFree:"), meminfo("CmaTotal:"),
           meminfo("CmaFree:"));
    check("reuse-cma-total", ts.size &&
          meminfo("CmaTotal:") == (long long)(ts.size / 1024));

    if (prctl(PR_SET_TAGGED_ADDR_CTRL,
              PR_TAGGED_ADDR_ENABLE | PR_MTE_TCF_SYNC |
              (0xfffeUL << PR_MTE_TAG_SHIFT), 0, 0, 0)) {
        check("reuse-prctl", 0);
    }

    /* everything we need later, before memory is full */
    long long total_kb = meminfo("MemTotal:");
    uint64_t fill_max = (uint64_t)total_kb * 1024 / PAGE;
    uint64_t tagged_pages = TAGGED_LEN / PAGE, mp_pages = MPROTECT_LEN / PAGE;
    uint64_t *pfn = map_anon(fill_max * 8, PROT_READ | PROT_WRITE);
    uint8_t *tags_a = map_anon(TAGGED_LEN / GRANULE, PROT_READ | PROT_WRITE);
    uint8_t *tags_m = map_anon(MPROTECT_LEN / GRANULE, PROT_READ | PROT_WRITE);
    char *fill = map_anon(fill_max * PAGE, PROT_READ | PROT_WRITE);
    Slice slice[MAX_THREADS];
    pthread_t tid[MAX_THREADS];

    if (!pfn || !tags_a || !tags_m || !fill) {
        check("reuse-mmap", 0);
        goto out;
    }
    memset(pfn, 0, fill_max * 8);
    memset(tags_a, 0, TAGGED_LEN / GRANULE);
    memset(tags_m, 0, MPROTECT_LEN / GRANULE);
    vmstat(&v0);
    snap("boot");

    /*
     * 1. fill, a MiB at a time once MemFree comes near FILL_LEAVE_KB; the
     * checksum "before" of the part we keep is that of what we wrote
     */
    uint64_t filled = 0, freed = FILL_FREE / PAGE, sum_before = 0;
    long long free_kb;
    while ((free_kb = meminfo("MemFree:")) > FILL_LEAVE_KB) {
        uint64_t step = 256;

        if (free_kb > 4 * FILL_LEAVE_KB) {
            step = (free_kb - 2 * FILL_LEAVE_KB) / 2 * 1024 / PAGE;
        }
        if (filled + step > fill_max) {
            break;
        }
        for (uint64_t i = 0; i < step; i++, filled++) {
            uint64_t c = fill_page((uint64_t *)(fill + filled * PAGE), filled);

            sum_before += filled >= freed ? c : 0;
        }
    }
    pfns(fill, filled, pfn);
    uint64_t in_cv = count_carveout(pfn, filled);
    printf("# fill: %llu MiB in %.1f s, %llu pages (%llu MiB) in the "
           "carveout; MemFree %lld kB, CmaFree %lld kB\n",
           (unsigned long long)(filled * PAGE / MIB), now() - t0,
           (unsigned long long)in_cv,
           (unsigned long long)(in_cv * PAGE / MIB), meminfo("MemFree:"),
           meminfo("CmaFree:"));
    check("reuse-fill-in-carveout", in_cv > 0);
    if (filled < freed + mp_pages + 256) {
        check("reuse-fill-size", 0);
        goto out;
    }
    printf("# unmapping the first %llu MiB of the fill (%llu pages of it "
           "in the carveout)\n", (unsigned long long)(FILL_FREE / MIB),
           (unsigned long long)count_carveout(pfn, freed));
    munmap(fill, freed * PAGE);

    char *kept = fill + freed * PAGE;
    uint64_t nkept = filled - freed, sum_after = 0;
    uint64_t *kept_pfn = pfn + freed;
    uint64_t mp_page0 = filled - mp_pages, bad;

    print_runs("CARVEOUT-DATA", kept_pfn, nkept, in_carveout);
    if (!choose_window(mode, pfn, freed, filled, &mp_page0, &mp_pages)) {
        check("reuse-mprotect-window", 0);
        goto out;
    }
    char *mp = fill + mp_page0 * PAGE;
    uint64_t mp_in_cv = count_carveout(pfn + mp_page0, mp_pages);
    printf("# kept %llu MiB of fill data, checksum %016llx; PROT_MTE for "
           "%llu of its pages (from %llu), %llu of them in the carveout\n",
           (unsigned long long)(nkept * PAGE / MIB),
           (unsigned long long)sum_before, (unsigned long long)mp_pages,
           (unsigned long long)mp_page0, (unsigned long long)mp_in_cv);
    snap("fill");

    /*
     * 2. mprotect(PROT_MTE) of populated memory, carveout pages included
     * (see choose_window()); the pages left out keep tags 0 in tags_m
     */
    uint64_t stride = mode == PLAIN ? 2 : 1, calls = 0, nonzero = 0;
    uint64_t len = mode == PAIR ? mp_pages : 1, mprotected = 0, left = 0;
    int rc = 0;
    for (uint64_t i = 0; i < mp_pages; i += mode == PAIR ? mp_pages : stride) {
        rc |= mprotect(mp + i * PAGE, len * PAGE,
                       PROT_READ | PROT_WRITE | PROT_MTE);
        calls++;
    }
    check("reuse-mprotect-mte", rc == 0);
    pfns(mp, mp_pages, pfn + mp_page0);
    for (uint64_t i = 0; i < mp_pages; i += stride) {
        mprotected++;
        left += in_carveout(pfn[mp_page0 + i]);
        for (uint64_t g = i * PAGE / GRANULE; g < (i + 1) * PAGE / GRANULE;
             g++) {
            nonzero += ldg(mp + g * GRANULE) != 0;
            tags_m[g] = irg_stg(mp + g * GRANULE);
        }
    }
    printf("# mprotect: %llu pages in %llu calls, %llu of them still in the "
           "carveout after it; %.1f s\n", (unsigned long long)mprotected,
           (unsigned long long)calls, (unsigned long long)left, now() - t0);
    check("reuse-mprotect-left-carveout", mp_in_cv > 0 && left == 0);
    check("reuse-mprotect-tags-zero", nonzero == 0);

    /* 3. fresh PROT_MTE memory, touched and tagged by THREADS threads */
    char *ta = map_anon(TAGGED_LEN, PROT_READ | PROT_WRITE | PROT_MTE);

    if (!ta) {
        check("reuse-mmap-mte", 0);
        goto out;
    }
    for (int i = 0; i < threads; i++) {
        uint64_t first = tagged_pages * i / threads;
        uint64_t end = tagged_pages * (i + 1) / threads;

        slice[i] = (Slice) {
            .p = ta + first * PAGE, .pages = end - first,
            .page0 = (1ULL << 32) + first,
            .tags = tags_a + first * PAGE / GRANULE,
        };
        if (pthread_create(&tid[i], NULL, tag_slice, &slice[i])) {
            tag_slice(&slice[i]);
            tid[i] = 0;
        }
    }
    uint64_t bad_tags = 0, bad_data = 0;
    for (int i = 0; i < threads; i++) {
        if (tid[i]) {
            pthread_join(tid[i], NULL);
        }
        bad_tags += slice[i].bad_tags;
        bad_data += slice[i].bad_data;
    }
    printf("# tagged %llu MiB in %d thread%s: %llu granules with wrong tags, "
           "%llu pages with wrong data; %.1f s\n",
           (unsigned long long)(TAGGED_LEN / MIB), threads,
           threads > 1 ? "s" : "", (unsigned long long)bad_tags,
           (unsigned long long)bad_data, now() - t0);
    check("reuse-tagged-tags", bad_tags == 0);
    check("reuse-tagged-data", bad_data == 0);
    uint64_t *ta_pfn = malloc(tagged_pages * 8);
    pfns(ta, tagged_pages, ta_pfn);
    uint64_t absent = 0;
    for (uint64_t i = 0; i < tagged_pages; i++) {
        absent += !ta_pfn[i];
    }
    check("reuse-tagged-outside-carveout",
          !absent && count_carveout(ta_pfn, tagged_pages) == 0);
    snap("tagged");

    /* 4. untagged data again, into what is left (the carveout's too) */
    uint64_t refill_max = (uint64_t)meminfo("MemFree:") * 1024 / PAGE;
    uint64_t refilled = 0, sum_refill = 0, sum_refill_after = 0;
    char *refill = map_anon(refill_max * PAGE, PROT_READ | PROT_WRITE);
    while (refill && refilled + 64 <= refill_max &&
           meminfo("MemFree:") > REFILL_LEAVE_KB) {
        for (int i = 0; i < 64; i++, refilled++) {
            sum_refill += fill_page((uint64_t *)(refill + refilled * PAGE),
                                    (2ULL << 32) + refilled);
        }
    }
    uint64_t *refill_pfn = malloc(refilled * 8 + 8);
    pfns(refill, refilled, refill_pfn);
    printf("# refill: %llu MiB, %llu pages in the carveout; MemFree %lld kB, "
           "CmaFree %lld kB\n", (unsigned long long)(refilled * PAGE / MIB),
           (unsigned long long)count_carveout(refill_pfn, refilled),
           meminfo("MemFree:"), meminfo("CmaFree:"));
    free(refill_pfn);
    snap("refill");

    /* 5. all the data and tags again */
    bad = check_ldg(ta, tagged_pages, tags_a) +
          check_ldg(mp, mp_pages, tags_m);
    check("reuse-tags-ldg", bad == 0);
    if (bad) {
        /* the checked loads below would fault: look at the data anyway */
        printf("# %llu granules with wrong tags: tag checks off from here\n",
               (unsigned long long)bad);
        prctl(PR_SET_TAGGED_ADDR_CTRL, PR_TAGGED_ADDR_ENABLE, 0, 0, 0);
    }
    bad = check_all(kept, mp_page0 - freed, freed, NULL, &sum_after);
    bad += check_all(mp, mp_pages, mp_page0, tags_m, &sum_after);
    bad += check_all(mp + mp_pages * PAGE, filled - mp_page0 - mp_pages,
                     mp_page0 + mp_pages, NULL, &sum_after);
    printf("# fill data checksum %016llx before, %016llx after, %llu pages "
           "differ from the pattern\n", (unsigned long long)sum_before,
           (unsigned long long)sum_after, (unsigned long long)bad);
    check("reuse-fill-data-kept", bad == 0 && sum_after == sum_before);
    uint64_t sum_a = 0, sum_slices = 0;
    for (int i = 0; i < threads; i++) {
        sum_slices += slice[i].sum;
    }
    bad = check_all(ta, tagged_pages, 1ULL << 32, tags_a, &sum_a);
    check("reuse-tagged-data-kept", bad == 0 && sum_a == sum_slices);
    bad = check_all(refill, refilled, 2ULL << 32, NULL, &sum_refill_after);
    check("reuse-refill-data-kept",
          bad == 0 && sum_refill == sum_refill_after);

    /* what the host checks in the carveout after power-off */
    pfns(ta, tagged_pages, ta_pfn);
    pfns(mp, mp_pages, pfn + mp_page0);
    uint32_t crc = digest_pages(0, ta, tagged_pages);
    for (uint64_t i = 0; i < mp_pages; i++) {
        if (i % stride) {
            pfn[mp_page0 + i] = 0;      /* not tagged */
        } else {
            crc = digest_pages(crc, mp + i * PAGE, 1);
        }
    }
    print_runs("TAGGED", ta_pfn, tagged_pages, any_page);
    print_runs("TAGGED", pfn + mp_page0, mp_pages, any_page);
    printf("TAGDIGEST %08x %llu\n", crc,
           (unsigned long long)(tagged_pages + mprotected));

out:
    vmstat(&v1);
    for (int i = 0; i < v1.n; i++) {
        printf("VMSTAT %s %lld %llu\n", v1.name[i], lookup(&v0, v1.name[i]),
               v1.val[i]);
    }
    printf("# vmstat deltas: cma_alloc_success %lld, pgmigrate_success %lld, "
           "tag_storage_reserve_success %lld, tag_storage_page_migrated %lld, "
           "tag_storage_late_reserve %lld\n",
           delta(&v0, &v1, "cma_alloc_success"),
           delta(&v0, &v1, "pgmigrate_success"),
           delta(&v0, &v1, "tag_storage_reserve_success"),
           delta(&v0, &v1, "tag_storage_page_migrated"),
           delta(&v0, &v1, "tag_storage_late_reserve"));
    check("reuse-cma-alloc", delta(&v0, &v1, "cma_alloc_success") > 0);
    check("reuse-pgmigrate", delta(&v0, &v1, "pgmigrate_success") > 0);
    check("reuse-page-migrated",
          delta(&v0, &v1, "tag_storage_page_migrated") > 0);
    static const char *const zero[] = {
        "tag_storage_reserve_fail", "tag_storage_missing",
        "tag_storage_page_migrate_fail", "cma_alloc_fail", NULL
    };
    for (int i = 0; zero[i]; i++) {
        snprintf(name, sizeof(name), "reuse-no-%s", zero[i]);
        check(name, delta(&v0, &v1, zero[i]) == 0);
    }
    /* the RFC's warnings and the port's own reports */
    log = dmesg();
    int warnings = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "WARNING") || strstr(line, "BUG") ||
            strstr(line, "Oops") || strstr(line, "without tag storage") ||
            strstr(line, "tag block") || strstr(line, "oom")) {
            printf("# dmesg: %s\n", line);
            warnings++;
        }
    }
    free(log);
    check("reuse-dmesg-clean", warnings == 0);
    printf("# workload: %.1f s\n", now() - t0);
    printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
           failures || !passes ? "FAIL" : "PASS");
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
