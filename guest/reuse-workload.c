/*
 * /reuse-workload of the Linux test guest: makes a kernel that reuses
 * MTE tag storage (the arm,mte-tag-storage RFC) put data in the carveout
 * and then take carveout pages and blocks back for tags.  Started by
 * /init (mte-init.c) as "/reuse-workload THREADS[,pair|,merge|,paths...]"
 * when the kernel command line has mts.reuse=THREADS[,...];
 * guest/tests/reuse-kernel.sh runs it.  With ",paths" or
 * ",paths=a+b+...", step 1 is followed by one workload per way a page
 * becomes tagged or needs its tag storage back instead of steps 2-5: see
 * "paths" below (its output lines are described there).
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "carveout.h"
#include "mte.h"

#define WORDS (PAGE / 8)
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

/* the counters that must not grow: failed reservations and migrations */
static const char *const zero_counters[] = {
    "tag_storage_reserve_fail", "tag_storage_missing",
    "tag_storage_page_migrate_fail", "cma_alloc_fail", NULL
};

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

/* print and count the kernel's warnings and the port's reports in @log */
static int count_warnings(char *log)
{
    int warnings = 0;

    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "WARNING") || strstr(line, "BUG") ||
            strstr(line, "Oops") || strstr(line, "without tag storage") ||
            strstr(line, "tag block") || strstr(line, "oom")) {
            printf("# dmesg: %s\n", line);
            warnings++;
        }
    }
    return warnings;
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
 * Fill @fill (room for @max pages) with the pattern of pages @page0...,
 * a MiB at a time once MemFree comes near @leave_kb, until it is below;
 * adds the checksums of the pages from @keep_from on to @sum.  Returns
 * the number of pages filled.
 */
static uint64_t fill_memory(char *fill, uint64_t max, long long leave_kb,
                            uint64_t page0, uint64_t keep_from, uint64_t *sum)
{
    uint64_t filled = 0;
    long long free_kb;

    while ((free_kb = meminfo("MemFree:")) > leave_kb) {
        uint64_t step = 256;

        if (free_kb > 4 * leave_kb) {
            step = (free_kb - 2 * leave_kb) / 2 * 1024 / PAGE;
        }
        if (filled + step > max) {
            break;
        }
        for (uint64_t i = 0; i < step; i++, filled++) {
            uint64_t c = fill_page((uint64_t *)(fill + filled * PAGE),
                                   page0 + filled);

            *sum += filled >= keep_from ? c : 0;
        }
    }
    return filled;
}

/*
 * Tag the @n pages at @p (PROT_MTE, data kept) with random tags, noted
 * in @tags; returns how many granules had a tag other than 0 before
 */
static uint64_t tag_pages(char *p, uint64_t n, uint8_t *tags)
{
    uint64_t nonzero = 0;

    for (uint64_t g = 0; g < n * PAGE / GRANULE; g++) {
        nonzero += ldg(p + g * GRANULE) != 0;
        tags[g] = irg_stg(p + g * GRANULE);
    }
    return nonzero;
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

/*
 * ---- paths: a workload for each way a page becomes tagged or needs its
 * tag storage back ----
 *
 * "/reuse-workload THREADS,paths[=a+b+...]" (mts.reuse=1,paths): after
 * the fill of main() (data in the carveout), one sub-workload per path,
 * in the order of paths[] below; the tagged memory of each stays mapped
 * to the end, so that each one's tag blocks are new ones (freed pages
 * would be handed out again first) and the later ones (pressure,
 * compaction) act on all of it and check all of it again.  Compaction
 * comes last: on a kernel that gets it wrong, the checks of the later
 * ones would meet its damage.  Each prints
 *   VMDELTA <name> cma_alloc_success=+N pgmigrate_success=+N
 *           tag_storage_...=+N ...   (its /proc/vmstat deltas)
 *   WLPAGES <name> <pfn> <n>         (the pages it tagged, at its end)
 *   SNAP wl-<name>                   (tagged memory live, quiet guest)
 *   WORKLOAD <name> pass|fail|not-covered <text>
 * after "WORKLOADS <name>..." (the list, once).  A workload fails when
 * its data or tags (LDG) are not what it wrote, its path did not happen
 * (e.g. no carveout page among the pages mprotect tagged), the kernel
 * counted a failed reservation or migration or a page tagged without tag
 * storage, or logged a warning, while it ran.  THP, swap, KSM, hugetlbfs
 * and NUMA: "not-covered" when the kernel lacks them (the vendored port
 * leaves them out), "fail" when it has them, since no workload here
 * tests them: never a pass.
 */
#define WL_PAGES (8 * MIB / PAGE)       /* tagged memory per workload */
#define MAX_REGIONS 16

enum { WL_PASS, WL_FAIL, WL_NC };
static const char *const wl_verdict[] = { "pass", "fail", "not-covered" };

typedef struct Wl {
    const char *name;
    char text[480];
    int fail;
} Wl;

/* the tagged memory still mapped, for the later re-checks */
static Slice regions[MAX_REGIONS];
static int nregions;
static char *kept_fill;             /* main()'s fill, still mapped */
static uint64_t kept_pages, kept_page0, kept_sum;
static uint64_t page_ns = 3;        /* pattern page numbers: (page_ns++ << 32) */

static void note(Wl *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(Wl *w, const char *fmt, ...)
{
    size_t len = strlen(w->text);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->text + len, sizeof(w->text) - len, fmt, ap);
    va_end(ap);
}

/* @ok, or fail with @why in the text */
static void expect(Wl *w, int ok, const char *why)
{
    if (!ok) {
        char f[128];

        snprintf(f, sizeof(f), "FAILED: %s", why);
        if (!strstr(w->text, f)) {      /* each reason once */
            note(w, "; %s", f);
        }
        w->fail = 1;
    }
}

static Slice *add_region(char *p, uint64_t pages, uint64_t page0)
{
    Slice *s = &regions[nregions < MAX_REGIONS ? nregions++ : 0];

    *s = (Slice) { .p = p, .pages = pages, .page0 = page0,
                   .tags = map_anon(pages * PAGE / GRANULE,
                                    PROT_READ | PROT_WRITE) };
    return s;
}

/* LDG and the pattern of @s again; with wrong tags, tag checks go off */
static void recheck(Slice *s, uint64_t *bad_tags, uint64_t *bad_data)
{
    uint64_t bt = check_ldg(s->p, s->pages, s->tags), sum = 0, bd;

    if (bt) {
        prctl(PR_SET_TAGGED_ADDR_CTRL, PR_TAGGED_ADDR_ENABLE, 0, 0, 0);
    }
    bd = check_all(s->p, s->pages, s->page0, s->tags, &sum);
    *bad_tags += bt;
    *bad_data += bd + (bd == 0 && sum != s->sum);
}

/*
 * every live region and main()'s fill: "; all N regions ..." in @w.
 * Regions an earlier workload found damaged are left out: their damage
 * is that workload's verdict, not this one's.
 */
static void recheck_all(Wl *w)
{
    uint64_t bt = 0, bd = 0, sum = 0, pages = 0;
    int damaged = 0;

    for (int i = 0; i < nregions; i++) {
        if (regions[i].bad_tags || regions[i].bad_data) {
            damaged++;
            continue;
        }
        recheck(&regions[i], &regions[i].bad_tags, &regions[i].bad_data);
        bt += regions[i].bad_tags;
        bd += regions[i].bad_data;
        pages += regions[i].pages;
    }
    if (damaged) {
        note(w, "; %d regions damaged before left out", damaged);
    }
    /* the fill outside the mprotect region (regions[] has that) */
    bd += check_all(kept_fill, kept_pages, kept_page0, NULL, &sum);
    note(w, "; all %d tagged regions (%llu pages): %llu granules with "
         "wrong tags, %llu pages with wrong data; fill (%llu pages): "
         "checksum %s", nregions - damaged, (unsigned long long)pages,
         (unsigned long long)bt, (unsigned long long)bd,
         (unsigned long long)kept_pages,
         sum == kept_sum ? "kept" : "CHANGED");
    expect(w, bt == 0, "tags changed");
    expect(w, bd == 0 && sum == kept_sum, "data changed");
}

/* the page frames of @s's tagged pages (0 for its untagged ones) */
static void tagged_pfns(const Slice *s, uint64_t *pfn)
{
    pfns(s->p, s->pages, pfn);
    for (uint64_t i = 0; i < s->pages; i++) {
        /* IRG never gives tag 0 (prctl excludes it) */
        pfn[i] = s->tags[i * PAGE / GRANULE] ? pfn[i] : 0;
    }
}

/*
 * Untagged data until MemFree is low again, as in main()'s fill: the
 * allocator gives the carveout's free pages (MIGRATE_CMA) to it too, so
 * that the tag blocks a workload then needs held data.  Returns the
 * mapping (@*pages long) to unmap when done.
 */
static char *top_up(uint64_t *pages)
{
    uint64_t max = (uint64_t)meminfo("MemFree:") * 1024 / PAGE, sum = 0;
    char *p = map_anon(max * PAGE, PROT_READ | PROT_WRITE);

    *pages = max;
    if (p) {
        fill_memory(p, max, FILL_LEAVE_KB, 0, max, &sum);
    }
    return p;
}

/* check a fresh slice tagged by tag_slice(): tags, data, placement */
static void judge_slice(Wl *w, Slice *s)
{
    uint64_t *pfn = malloc(s->pages * 8), absent = 0;

    pfns(s->p, s->pages, pfn);
    for (uint64_t i = 0; i < s->pages; i++) {
        absent += !pfn[i];
    }
    note(w, "%llu pages tagged, %llu granules with wrong tags, %llu pages "
         "with wrong data, %llu in the carveout, %llu not present",
         (unsigned long long)s->pages, (unsigned long long)s->bad_tags,
         (unsigned long long)s->bad_data,
         (unsigned long long)count_carveout(pfn, s->pages),
         (unsigned long long)absent);
    if (strcmp(w->name, "fork")) {  /* fork: its pages after COW */
        char what[64];

        snprintf(what, sizeof(what), "WLPAGES %s", w->name);
        print_runs(what, pfn, s->pages, any_page);
    }
    expect(w, s->bad_tags == 0, "wrong tags");
    expect(w, s->bad_data == 0, "wrong data");
    expect(w, !absent && count_carveout(pfn, s->pages) == 0,
           "tagged pages in the carveout or not present");
    free(pfn);
}

/* a fresh PROT_MTE mapping, touched and tagged by tag_slice() */
static Slice *fresh_region(Wl *w, uint64_t pages)
{
    char *p = map_anon(pages * PAGE, PROT_READ | PROT_WRITE | PROT_MTE);
    Slice *s;

    if (!p) {
        expect(w, 0, "mmap(PROT_MTE)");
        return NULL;
    }
    s = add_region(p, pages, page_ns++ << 32);
    tag_slice(s);
    return s;
}

/* the pattern of page @page at @q, each granule through its tag in @t */
static void fill_tagged(char *q, uint64_t page, const uint8_t *t)
{
    uint64_t w = page * PAT_PAGE;

    for (unsigned g = 0; g < PAGE / GRANULE; g++, w += 2 * PAT_WORD) {
        volatile uint64_t *d = with_tag(q + g * GRANULE, t[g]);

        d[0] = w;
        d[1] = w + PAT_WORD;
    }
}

/* anonymous faults: read faults (the zero page) then write faults */
static int wl_anon_fault(Wl *w)
{
    uint64_t pages = WL_PAGES;
    char *p = map_anon(pages * PAGE, PROT_READ | PROT_WRITE | PROT_MTE);
    uint64_t zero = 0;
    Slice *s;

    if (!p) {
        expect(w, 0, "mmap(PROT_MTE)");
        return WL_FAIL;
    }
    /* every other page read first: it maps the zero page, then COW */
    for (uint64_t i = 0; i < pages; i += 2) {
        zero |= *(volatile uint64_t *)(p + i * PAGE);
    }
    s = add_region(p, pages, page_ns++ << 32);
    tag_slice(s);           /* STG page by page: a write fault each */
    note(w, "read faults on %llu pages (zero page, data %s), then ",
         (unsigned long long)pages / 2, zero ? "NOT 0" : "0");
    judge_slice(w, s);
    expect(w, zero == 0, "zero page not zero");
    return w->fail;
}

/* mprotect(PROT_MTE) of populated fill pages, a page at a time */
static int wl_mprotect(Wl *w)
{
    uint64_t n = 2 * 1024, first = kept_pages - n;
    char *mp = kept_fill + first * PAGE;
    uint64_t *pfn = malloc(n * 8), in_cv = 0, left = 0, nonzero = 0, calls;
    uint64_t sum = 0, bad;
    int rc = 0;
    Slice *s;

    /* the fill's last pages are where the carveout got some of it */
    pfns(mp, n, pfn);
    for (uint64_t i = 0; i < n; i += 2) {
        in_cv += in_carveout(pfn[i]);
    }
    /* every other page on its own: no VM_MTE vma to merge with */
    for (calls = 0; calls < n / 2; calls++) {
        rc |= mprotect(mp + 2 * calls * PAGE, PAGE,
                       PROT_READ | PROT_WRITE | PROT_MTE);
    }
    s = add_region(mp, n, kept_page0 + first);
    kept_pages = first;     /* the region has the rest of the fill now */
    pfns(mp, n, pfn);
    for (uint64_t i = 0; i < n; i += 2) {
        left += in_carveout(pfn[i]);
        nonzero += tag_pages(mp + i * PAGE, 1, s->tags + i * PAGE / GRANULE);
    }
    bad = check_ldg(mp, n, s->tags);
    uint64_t bad_data = check_all(mp, n, s->page0, s->tags, &sum);
    s->sum = sum;
    s->bad_tags = bad;
    s->bad_data = bad_data;
    /* the fill's checksum without these pages */
    uint64_t rest = 0;
    expect(w, check_all(kept_fill, kept_pages, kept_page0, NULL, &rest) == 0,
           "fill data changed");
    kept_sum = rest;
    note(w, "%llu pages in %llu calls (rc %d), %llu of them in the "
         "carveout before, %llu after; %llu granules not tag 0 before "
         "STG, %llu with wrong tags, %llu pages with wrong data",
         (unsigned long long)n / 2, (unsigned long long)calls, rc,
         (unsigned long long)in_cv, (unsigned long long)left,
         (unsigned long long)nonzero, (unsigned long long)bad,
         (unsigned long long)bad_data);
    expect(w, rc == 0, "mprotect failed");
    expect(w, in_cv > 0, "no carveout page to migrate: path not taken");
    expect(w, left == 0, "tagged pages left in the carveout");
    expect(w, nonzero == 0, "tags not zeroed");
    expect(w, bad == 0 && bad_data == 0, "tags or data wrong");
    /* WLPAGES: only the pages it tagged */
    for (uint64_t i = 1; i < n; i += 2) {
        pfn[i] = 0;
    }
    print_runs("WLPAGES mprotect", pfn, n, any_page);
    free(pfn);
    return w->fail;
}

/*
 * A shmem file (memfd or a file on tmpfs) mapped MAP_SHARED with
 * PROT_MTE: the first half written with write(2) before (page cache
 * pages, untagged, some maybe in the carveout: the fault must reserve
 * their tag storage or migrate them), the second half faulted in fresh.
 * A second mapping must see the same tags and data.
 */
static int wl_file(Wl *w, int fd)
{
    uint64_t n = WL_PAGES, half = n / 2, page0 = page_ns++ << 32;
    uint64_t *pfn = malloc(n * 8), in_cv = 0, sum = 0, bad_pre, nonzero;
    uint64_t buf[WORDS];
    char *m0, *m1, *m2;
    Slice *s, tail;

    if (fd < 0 || ftruncate(fd, n * PAGE)) {
        expect(w, 0, "file");
        return WL_FAIL;
    }
    /*
     * memory low again for the write(2)s, so that the allocator takes
     * the carveout (MIGRATE_CMA) for some page cache pages, which the
     * fault must then migrate
     */
    uint64_t tmax;
    char *tmp = top_up(&tmax);
    for (uint64_t i = 0; i < half; i++) {
        fill_page(buf, page0 + i);
        if (pwrite(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE) {
            expect(w, 0, "write");
            return WL_FAIL;
        }
    }
    if (tmp) {
        munmap(tmp, tmax * PAGE);
    }
    /* where write(2) put them: a mapping without PROT_MTE to look */
    m0 = mmap(NULL, half * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (m0 != MAP_FAILED) {
        for (uint64_t i = 0; i < half; i++) {
            sum += *(volatile char *)(m0 + i * PAGE);
        }
        pfns(m0, half, pfn);
        in_cv = count_carveout(pfn, half);
        munmap(m0, half * PAGE);
    }
    m1 = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE | PROT_MTE, MAP_SHARED,
              fd, 0);
    m2 = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE | PROT_MTE, MAP_SHARED,
              fd, 0);
    if (m1 == MAP_FAILED || m2 == MAP_FAILED) {
        note(w, "mmap(MAP_SHARED, PROT_MTE): %s", strerror(errno));
        expect(w, 0, "mmap");
        return WL_FAIL;
    }
    s = add_region(m1, n, page0);
    /* the written half: data as written, tags 0, then tagged */
    sum = 0;
    bad_pre = check_all(m1, half, page0, NULL, &sum);
    nonzero = tag_pages(m1, half, s->tags);
    /* the other half: fresh shmem pages, tagged as they fault */
    tail = (Slice) { .p = m1 + half * PAGE, .pages = n - half,
                     .page0 = page0 + half,
                     .tags = s->tags + half * PAGE / GRANULE };
    tag_slice(&tail);
    s->sum = 0;
    uint64_t bad_data = check_all(m1, n, page0, s->tags, &s->sum);
    uint64_t bad_tags = check_ldg(m1, n, s->tags);

    s->bad_tags = bad_tags + tail.bad_tags;
    s->bad_data = bad_data + bad_pre + tail.bad_data;
    /* the second mapping: the same pages, tags and data */
    uint64_t sum2 = 0, bad2 = check_ldg(m2, n, s->tags);
    bad2 += check_all(m2, n, page0, s->tags, &sum2);
    pfns(m1, n, pfn);
    uint64_t left = count_carveout(pfn, n);
    note(w, "%llu pages written with write(2) first (%llu in the carveout, "
         "%llu with wrong data), %llu faulted fresh; %llu granules not "
         "tag 0 before STG, %llu with wrong tags, %llu pages with wrong "
         "data, %llu in the carveout after; second mapping: %llu wrong "
         "(checksum %s)", (unsigned long long)half,
         (unsigned long long)in_cv, (unsigned long long)bad_pre,
         (unsigned long long)(n - half), (unsigned long long)nonzero,
         (unsigned long long)bad_tags, (unsigned long long)bad_data,
         (unsigned long long)left, (unsigned long long)bad2,
         sum2 == s->sum ? "same" : "DIFFERS");
    expect(w, bad_pre == 0 && nonzero == 0, "written data or zero tags");
    expect(w, bad_tags == 0 && bad_data == 0 && tail.bad_tags == 0 &&
           tail.bad_data == 0, "tags or data wrong");
    expect(w, left == 0, "tagged pages in the carveout");
    expect(w, bad2 == 0 && sum2 == s->sum, "second mapping differs");
    munmap(m2, n * PAGE);
    print_runs(strcmp(w->name, "shmem") ? "WLPAGES shared-file" :
               "WLPAGES shmem", pfn, n, any_page);
    free(pfn);
    return w->fail;
}

static int wl_shmem(Wl *w)
{
    int fd = memfd_create("reuse-wl-shmem", 0);

    note(w, "memfd: ");
    return wl_file(w, fd);
}

static int wl_shared_file(Wl *w)
{
    const char *dir = "/tmp/reuse-wl";
    int fd;

    mkdir("/tmp", 0755);
    mkdir(dir, 0755);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64m")) {
        note(w, "mount tmpfs: %s; ", strerror(errno));
        expect(w, 0, "mount");
        return WL_FAIL;
    }
    fd = open("/tmp/reuse-wl/file", O_RDWR | O_CREAT | O_TRUNC, 0600);
    note(w, "tmpfs file: ");
    return wl_file(w, fd);
}

/*
 * fork and copy-on-write: the child checks the inherited tags and data,
 * writes its half (COW: new pages, the tags copied) and re-tags a granule
 * of each; then the parent writes the other half (COW while the child
 * still maps the pages); each checks what it must see.
 */
static int wl_fork(Wl *w)
{
    uint64_t tmax;
    char *tmp = top_up(&tmax);

    if (tmp) {
        munmap(tmp, tmax * PAGE);   /* free carveout pages held data */
    }
    Slice *s = fresh_region(w, WL_PAGES);
    uint64_t n = WL_PAGES, half = n / 2;
    uint64_t *pfn0 = malloc(n * 8), *pfn1 = malloc(n * 8);
    int c2p[2], p2c[2], st = 0;
    char b = 0;
    pid_t pid;

    if (!s || pipe(c2p) || pipe(p2c)) {
        expect(w, 0, "setup");
        return WL_FAIL;
    }
    judge_slice(w, s);
    pfns(s->p, n, pfn0);
    fflush(stdout);         /* nothing buffered for the child to repeat */
    pid = fork();
    if (pid == 0) {
        uint8_t *tags = malloc(n * PAGE / GRANULE);
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        /* a tag check fault kills the child only, the parent reports it */
        sigaction(SIGSEGV, &dfl, NULL);
        sigaction(SIGBUS, &dfl, NULL);
        uint64_t sum = 0, bad;
        int rc = 0;

        memcpy(tags, s->tags, n * PAGE / GRANULE);
        bad = check_tags(s->p, n, tags);
        bad += check_pages(s->p, n, s->page0, tags, &sum);
        rc |= bad ? 1 : 0;
        /* its half: new data (a COW fault each page), then a new tag
         * on the first granule of each, its data stored again */
        for (uint64_t i = 0; i < half; i++) {
            char *q = s->p + i * PAGE;
            uint8_t *t = tags + i * PAGE / GRANULE;
            uint64_t *d = with_tag(q, t[0]), w0, w1;

            fill_tagged(q, s->page0 + (1ULL << 31) + i, t);
            w0 = d[0];
            w1 = d[1];
            t[0] = irg_stg(q);
            d = with_tag(q, t[0]);
            d[0] = w0;
            d[1] = w1;
        }
        if (write(c2p[1], "c", 1) != 1 || read(p2c[0], &b, 1) != 1) {
            _exit(8);
        }
        sum = 0;
        bad = check_tags(s->p, n, tags);
        rc |= bad ? 2 : 0;
        if (!bad) {
            bad = check_pages(s->p, half, s->page0 + (1ULL << 31), tags,
                              &sum);
            bad += check_pages(s->p + half * PAGE, n - half,
                               s->page0 + half, tags + half * PAGE / GRANULE,
                               &sum);
            rc |= bad ? 4 : 0;
        }
        _exit(rc);
    }
    if (pid < 0) {
        expect(w, 0, "fork");
        return WL_FAIL;
    }
    if (read(c2p[0], &b, 1) != 1) {
        b = 0;
    }
    /* the parent's half: the same data again, a COW fault each page */
    for (uint64_t i = half; i < n; i++) {
        char *q = s->p + i * PAGE;

        fill_tagged(q, s->page0 + i, s->tags + i * PAGE / GRANULE);
    }
    if (write(p2c[1], "p", 1) != 1) {
        b = 0;
    }
    waitpid(pid, &st, 0);
    close(c2p[0]); close(c2p[1]); close(p2c[0]); close(p2c[1]);
    uint64_t bt = 0, bd = 0, moved0 = 0, moved1 = 0;
    recheck(s, &bt, &bd);
    s->bad_tags += bt;
    s->bad_data += bd;
    pfns(s->p, n, pfn1);
    for (uint64_t i = 0; i < n; i++) {
        *(i < half ? &moved0 : &moved1) += pfn0[i] != pfn1[i];
    }
    note(w, "; child: exit %d (%s); parent: %llu granules with wrong "
         "tags, %llu pages with wrong data, COW gave it new pages for "
         "%llu of the %llu it wrote, %llu of the %llu the child wrote",
         WIFEXITED(st) ? WEXITSTATUS(st) : -1,
         !WIFEXITED(st) ? "killed" : WEXITSTATUS(st) == 0 ? "its tags and "
         "data right" : WEXITSTATUS(st) & 3 ? "wrong tags" : "wrong data",
         (unsigned long long)bt, (unsigned long long)bd,
         (unsigned long long)moved1, (unsigned long long)(n - half),
         (unsigned long long)moved0, (unsigned long long)half);
    expect(w, b == 'c' && WIFEXITED(st) && WEXITSTATUS(st) == 0,
           "child saw wrong tags or data");
    expect(w, bt == 0 && bd == 0, "parent saw wrong tags or data");
    expect(w, moved1 == n - half && moved0 == 0, "no copy-on-write");
    expect(w, count_carveout(pfn1, n) == 0, "tagged pages in the carveout");
    print_runs("WLPAGES fork", pfn1, n, any_page);
    free(pfn0);
    free(pfn1);
    return w->fail;
}

/*
 * compaction: tagged pages with holes between them (an untagged page
 * after each, unmapped again), then /proc/sys/vm/compact_memory: the
 * kernel migrates tagged pages, every live region's among them; their
 * destinations need tag storage.  move_pages(2) too, where the kernel
 * has it (NUMA).
 */
static int wl_compaction(Wl *w)
{
    uint64_t n = WL_PAGES;
    char *t = map_anon(n * PAGE, PROT_READ | PROT_WRITE | PROT_MTE);
    char *u = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
    uint64_t moved = 0, total = 0;
    uint64_t *before[MAX_REGIONS], *after = NULL;
    int fd, ok;
    Slice *s;

    if (!t || !u) {
        expect(w, 0, "mmap");
        return WL_FAIL;
    }
    /* interleaved faults: a tagged page, an untagged one, ... */
    for (uint64_t i = 0; i < n; i++) {
        t[i * PAGE] = 0;
        u[i * PAGE] = 1;
    }
    munmap(u, n * PAGE);
    s = add_region(t, n, page_ns++ << 32);
    tag_slice(s);
    for (int i = 0; i < nregions; i++) {
        before[i] = malloc(regions[i].pages * 8);
        tagged_pfns(&regions[i], before[i]);
    }
    fd = open("/proc/sys/vm/compact_memory", O_WRONLY);
    ok = fd >= 0 && write(fd, "1\n", 2) == 2;
    if (fd >= 0) {
        close(fd);
    }
    note(w, "compact_memory: %s", ok ? "written" : strerror(errno));
    expect(w, ok, "/proc/sys/vm/compact_memory");
    long r = syscall(SYS_move_pages, 0, 0UL, NULL, NULL, NULL, 0);
    note(w, "; move_pages: %s", r == 0 ? "available, not exercised here" :
         errno == ENOSYS ? "ENOSYS (no NUMA)" : strerror(errno));
    for (int i = 0; i < nregions; i++) {
        after = realloc(after, regions[i].pages * 8);
        tagged_pfns(&regions[i], after);
        for (uint64_t j = 0; j < regions[i].pages; j++) {
            moved += before[i][j] && after[j] && before[i][j] != after[j];
            total += before[i][j] != 0;
        }
        free(before[i]);
    }
    note(w, "; %llu of %llu tagged pages moved", (unsigned long long)moved,
         (unsigned long long)total);
    expect(w, moved > 0, "no tagged page migrated: path not taken");
    recheck_all(w);
    /* the tagged pages of all regions now */
    for (int i = 0; i < nregions; i++) {
        after = realloc(after, regions[i].pages * 8);
        tagged_pfns(&regions[i], after);
        expect(w, count_carveout(after, regions[i].pages) == 0,
               "tagged pages in the carveout");
        print_runs("WLPAGES compaction", after, regions[i].pages, any_page);
    }
    free(after);
    return w->fail;
}

/*
 * pressure: untagged data until MemFree is low again, which the kernel
 * takes from the carveout too while every region's tags are live; then
 * fresh tagged memory under that pressure (its tag blocks hold the new
 * data); then everything is checked.
 */
static int wl_pressure(Wl *w)
{
    uint64_t max = (uint64_t)meminfo("MemFree:") * 1024 / PAGE, sum = 0;
    char *p = map_anon(max * PAGE, PROT_READ | PROT_WRITE);
    uint64_t page0 = page_ns++ << 32, filled, *pfn, in_cv, sum2 = 0, bad;
    Slice *s;

    if (!p) {
        expect(w, 0, "mmap");
        return WL_FAIL;
    }
    note(w, "MemFree %lld kB, CmaFree %lld kB; ", meminfo("MemFree:"),
         meminfo("CmaFree:"));
    /*
     * down to REFILL_LEAVE_KB, where free CMA pages are more than half of
     * the free pages and the allocator hands them out first; then the
     * first 8 MiB (taken before that: not carveout) go again, room for
     * the tagged pages, which cannot live in the carveout
     */
    uint64_t room = 8 * MIB / PAGE;
    filled = fill_memory(p, max, REFILL_LEAVE_KB, page0, room, &sum);
    pfn = malloc(filled * 8 + 8);
    pfns(p, filled, pfn);
    in_cv = count_carveout(pfn, filled);
    print_runs("CARVEOUT-DATA", pfn, filled, in_carveout);
    note(w, "%llu MiB of data, %llu pages of it in the carveout; MemFree "
         "%lld kB, CmaFree %lld kB; ", (unsigned long long)(filled * PAGE /
         MIB), (unsigned long long)in_cv, meminfo("MemFree:"),
         meminfo("CmaFree:"));
    expect(w, in_cv > 0, "no carveout page given to data");
    if (filled <= room) {
        expect(w, 0, "too little memory");
        return WL_FAIL;
    }
    munmap(p, room * PAGE);
    s = fresh_region(w, WL_PAGES / 2);
    if (s) {
        judge_slice(w, s);
    }
    recheck_all(w);
    /* WLPAGES: every tagged page still mapped: their tag blocks must
     * still hold tags, none given to the data */
    for (int i = 0; i < nregions; i++) {
        uint64_t *t = malloc(regions[i].pages * 8);

        tagged_pfns(&regions[i], t);
        print_runs("WLPAGES pressure", t, regions[i].pages, any_page);
        free(t);
    }
    bad = check_all(p + room * PAGE, filled - room, page0 + room, NULL,
                    &sum2);
    note(w, "; the new data: %llu pages wrong, checksum %s",
         (unsigned long long)bad, sum2 == sum ? "kept" : "CHANGED");
    expect(w, bad == 0 && sum2 == sum, "data changed");
    free(pfn);
    munmap(p + room * PAGE, (max - room) * PAGE);  /* room for compaction */
    return w->fail;
}

/* what the vendored port leaves out: covered nowhere here */
static int left_out(Wl *w, int has, const char *what)
{
    note(w, "%s %s", what, has ? "is in this kernel, but no workload here "
         "tests it" : "is not in this kernel");
    return has ? WL_FAIL : WL_NC;
}

static int wl_thp(Wl *w)
{
    return left_out(w, !access("/sys/kernel/mm/transparent_hugepage", F_OK),
                    "THP (/sys/kernel/mm/transparent_hugepage)");
}

static int wl_swap(Wl *w)
{
    long r = syscall(SYS_swapon, "/nonexistent", 0);

    return left_out(w, !(r < 0 && errno == ENOSYS), "swap (swapon(2))");
}

static int wl_ksm(Wl *w)
{
    return left_out(w, !access("/sys/kernel/mm/ksm", F_OK),
                    "KSM (/sys/kernel/mm/ksm)");
}

static int wl_hugetlbfs(Wl *w)
{
    char buf[4096] = "";

    read_file("/proc/filesystems", buf, sizeof(buf) - 1);
    return left_out(w, strstr(buf, "hugetlbfs") != NULL,
                    "hugetlbfs (/proc/filesystems)");
}

static int wl_numa(Wl *w)
{
    long r = syscall(SYS_move_pages, 0, 0UL, NULL, NULL, NULL, 0);

    return left_out(w, !(r < 0 && errno == ENOSYS),
                    "NUMA (move_pages(2))");
}

static const struct {
    const char *name;
    int (*run)(Wl *w);
} paths[] = {
    { "anon-fault", wl_anon_fault }, { "mprotect", wl_mprotect },
    { "shmem", wl_shmem }, { "shared-file", wl_shared_file },
    { "fork", wl_fork }, { "pressure", wl_pressure },
    { "compaction", wl_compaction }, { "thp", wl_thp }, { "swap", wl_swap },
    { "ksm", wl_ksm }, { "hugetlbfs", wl_hugetlbfs }, { "numa", wl_numa },
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* is path @i selected by @spec ("paths" or "paths=a+b+...")? */
static int selected(const char *spec, int i)
{
    const char *p = strchr(spec, '=');
    size_t len = strlen(paths[i].name);

    if (!p) {
        return 1;
    }
    for (p++; *p && *p != ','; p += strcspn(p, "+,"), p += *p == '+') {
        if (strcspn(p, "+,") == len && !strncmp(p, paths[i].name, len)) {
            return 1;
        }
    }
    return 0;
}

/*
 * Run the selected paths after main()'s fill: @fill, @n pages of it
 * still mapped, pattern pages @page0..., checksum @sum
 */
static void run_paths(const char *spec, char *fill, uint64_t n,
                      uint64_t page0, uint64_t sum)
{
    int known = 0;

    kept_fill = fill;
    kept_pages = n;
    kept_page0 = page0;
    kept_sum = sum;
    printf("WORKLOADS");
    for (unsigned i = 0; i < NPATHS; i++) {
        if (selected(spec, i)) {
            printf(" %s", paths[i].name);
            known++;
        }
    }
    printf("\n");
    check("paths-selected", known > 0);
    for (unsigned i = 0; i < NPATHS; i++) {
        Wl w = { .name = paths[i].name };
        VmStat a, b;
        char *log, snapname[64];
        size_t seen;
        double t = now();
        int v;

        if (!selected(spec, i)) {
            continue;
        }
        log = dmesg();
        seen = strlen(log);
        free(log);
        vmstat(&a);
        v = paths[i].run(&w);
        vmstat(&b);
        if (v != WL_NC) {
            printf("VMDELTA %s cma_alloc_success=%+lld "
                   "pgmigrate_success=%+lld", w.name,
                   delta(&a, &b, "cma_alloc_success"),
                   delta(&a, &b, "pgmigrate_success"));
            for (int k = 0; k < b.n; k++) {
                if (!strncmp(b.name[k], "tag_storage_", 12)) {
                    printf(" %s=%+lld", b.name[k], delta(&a, &b, b.name[k]));
                }
            }
            printf("\n");
            for (int k = 0; zero_counters[k]; k++) {
                if (delta(&a, &b, zero_counters[k]) > 0) {
                    note(&w, "; %s +%lld", zero_counters[k], delta(&a, &b, zero_counters[k]));
                    expect(&w, 0, "the kernel counted a failure");
                }
            }
            log = dmesg();
            int warnings = strlen(log) >= seen ? count_warnings(log + seen)
                                                : count_warnings(log);
            free(log);
            if (warnings) {
                note(&w, "; %d kernel warnings", warnings);
                expect(&w, 0, "kernel warnings");
            }
            snprintf(snapname, sizeof(snapname), "wl-%s", w.name);
            snap(snapname);
            if (v == WL_PASS && w.fail) {
                v = WL_FAIL;
            }
        }
        printf("WORKLOAD %s %s %s (%.1f s)\n", w.name, wl_verdict[v],
               w.text, now() - t);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    enum Mode mode = argc < 2 ? PLAIN : strstr(argv[1], ",pair") ? PAIR :
                     strstr(argv[1], ",merge") ? MERGE : PLAIN;
    const char *paths_spec = argc < 2 ? NULL : strstr(argv[1], ",paths");
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
           threads > 1 ? "s" : "", paths_spec ? ", paths" : mode_text[mode]);

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
    uint64_t freed = FILL_FREE / PAGE, sum_before = 0;
    uint64_t filled = fill_memory(fill, fill_max, FILL_LEAVE_KB, 0, freed,
                                  &sum_before);
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
    if (paths_spec) {
        snap("fill");
        run_paths(paths_spec + 1, kept, nkept, freed, sum_before);
        goto out;
    }
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
        nonzero += tag_pages(mp + i * PAGE, 1, tags_m + i * PAGE / GRANULE);
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
    /* paths: each workload judged its own deltas and kernel log */
    if (paths_spec) {
        goto done;
    }
    check("reuse-cma-alloc", delta(&v0, &v1, "cma_alloc_success") > 0);
    check("reuse-pgmigrate", delta(&v0, &v1, "pgmigrate_success") > 0);
    check("reuse-page-migrated",
          delta(&v0, &v1, "tag_storage_page_migrated") > 0);
    for (int i = 0; zero_counters[i]; i++) {
        snprintf(name, sizeof(name), "reuse-no-%s", zero_counters[i]);
        check(name, delta(&v0, &v1, zero_counters[i]) == 0);
    }
    /* the RFC's warnings and the port's own reports */
    log = dmesg();
    int warnings = count_warnings(log);
    free(log);
    check("reuse-dmesg-clean", warnings == 0);
done:
    printf("# workload: %.1f s\n", now() - t0);
    printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
           failures || !passes ? "FAIL" : "PASS");
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
