/*
 * /init of the Linux test guest: an MTE suite and the tag storage reuse
 * probe, run by an unmodified kernel, reported on the console.
 *
 * Output: "ok <name>" / "not ok <name>" per check, "TAGGED <pfn> <n>" for
 * the pages the suite tagged (the host checks that the rest of the
 * carveout is untouched), then "RESULT pass=<n> fail=<n>" and PASS/FAIL.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "carveout.h"
#include "mte.h"

static int passes, failures;

static void check(const char *name, int ok)
{
    printf("%s %s\n", ok ? "ok" : "not ok", name);
    fflush(stdout);
    ok ? passes++ : failures++;
}

/* ---- faults ---- */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_code;   /* set by the signal handler */
static void *volatile fault_addr;          /* set by the signal handler */

static volatile sig_atomic_t fault_armed;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    char msg[96];

    if (!fault_armed) {
        /* a fault no check expected: report it, never resume elsewhere */
        snprintf(msg, sizeof(msg), "not ok unexpected-segv code=%d addr=%p\n",
                 si->si_code, si->si_addr);
        write(1, msg, strlen(msg));
        if (getpid() == 1) {
            sync();
            reboot(RB_POWER_OFF);   /* no RESULT line: the run fails */
        }
        _exit(4);
    }
    fault_armed = 0;
    fault_code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(fault_jmp, 1);
}

/* Returns the si_code of the SIGSEGV the access raised, or 0 */
#define FAULT_CODE(access) ({                                        \
    fault_code = 0;                                                   \
    if (!sigsetjmp(fault_jmp, 1)) {                                   \
        fault_armed = 1;                                              \
        access;                                                       \
        asm volatile("" ::: "memory");                                \
    }                                                                 \
    fault_armed = 0;                                                  \
    (int)fault_code;                                                  \
})

static uint64_t load(void *p)
{
    return *(volatile uint64_t *)p;      /* volatile: the access is the test */
}

static void store(void *p, uint64_t v)
{
    *(volatile uint64_t *)p = v;         /* volatile: the access is the test */
}

/* ---- physical addresses and tagged page accounting ---- */

static uint64_t pfn_of(void *p)
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
    return (e & (1ULL << 63)) ? e & ((1ULL << 55) - 1) : 0;
}

/* Tell the host which pages hold tags (call before unmapping them) */
static void report_tagged(void *p, size_t len)
{
    uint64_t start = 0, n = 0;

    for (size_t off = 0; off < len; off += PAGE) {
        uint64_t pfn = pfn_of((char *)p + off);

        if (pfn && n && pfn == start + n) {
            n++;
            continue;
        }
        if (n) {
            printf("TAGGED %llx %llu\n", (unsigned long long)start,
                   (unsigned long long)n);
        }
        start = pfn;
        n = pfn != 0;
    }
    if (n) {
        printf("TAGGED %llx %llu\n", (unsigned long long)start,
               (unsigned long long)n);
    }
    fflush(stdout);
}

/* ---- the suite ---- */

static void test_basic(void)
{
    char *p = map_mte(16 * PAGE);
    int ok = 1;

    check("prctl-sync", set_tcf(PR_MTE_TCF_SYNC) == 0 &&
          (prctl(PR_GET_TAGGED_ADDR_CTRL, 0, 0, 0, 0) & PR_MTE_TCF_SYNC));
    check("mmap-prot-mte", p != NULL);
    if (!p) {
        return;
    }
    for (unsigned i = 0; i < 256; i++) {
        stg(with_tag(p + i * GRANULE, i));
    }
    for (unsigned i = 0; i < 256; i++) {
        ok &= ldg(p + i * GRANULE) == (i & 15);
    }
    check("stg-ldg", ok);
    char *q = irg(p + 4096);
    stg(q);
    check("irg-stg-ldg", ldg(p + 4096) == (((uintptr_t)q >> 56) & 15) &&
          ((uintptr_t)q >> 56) != 0);
    store(q, 42);
    check("tagged-access", load(q) == 42);

    char *bad = with_tag(q, ((uintptr_t)q >> 56) + 1);
    check("sync-fault-code", FAULT_CODE(load(bad)) == SEGV_MTESERR);
    check("sync-fault-addr", ((uintptr_t)fault_addr & ADDR_MASK) ==
          ((uintptr_t)bad & ADDR_MASK));
    check("sync-store-fault", FAULT_CODE(store(bad, 1)) == SEGV_MTESERR &&
          load(q) == 42);
    report_tagged(p, 16 * PAGE);
    munmap(p, 16 * PAGE);
}

static void test_async(void)
{
    char *p = map_mte(PAGE);
    int code;

    check("prctl-async", set_tcf(PR_MTE_TCF_ASYNC) == 0);
    stg(with_tag(p, 3));
    code = FAULT_CODE({
        store(with_tag(p, 4), 1);
        getppid();              /* the kernel reports on entry */
        usleep(1000);
    });
    check("async-fault-code", code == SEGV_MTEAERR);
    set_tcf(PR_MTE_TCF_SYNC);
    report_tagged(p, PAGE);
    munmap(p, PAGE);
}

static void test_fork_cow(void)
{
    char *p = map_mte(4 * PAGE);
    pid_t pid;
    int st;

    for (int i = 0; i < 4; i++) {
        stg(with_tag(p + i * PAGE, 5 + i));
        store(with_tag(p + i * PAGE, 5 + i), 100 + i);
    }
    report_tagged(p, 4 * PAGE);
    pid = fork();
    if (pid == 0) {
        int ok = 1;

        for (int i = 0; i < 4; i++) {
            ok &= ldg(p + i * PAGE) == 5 + i;
            store(with_tag(p + i * PAGE, 5 + i), 200 + i);  /* COW */
            ok &= ldg(p + i * PAGE) == 5 + i;
            ok &= load(with_tag(p + i * PAGE, 5 + i)) == 200 + i;
        }
        ok &= FAULT_CODE(load(with_tag(p, 9))) == SEGV_MTESERR;
        report_tagged(p, 4 * PAGE);
        _exit(ok ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    check("fork-cow-child", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check("fork-cow-parent", ldg(p) == 5 &&
          load(with_tag(p, 5)) == 100 && load(with_tag(p + 3 * PAGE, 8)) == 103);
    munmap(p, 4 * PAGE);
}

static void test_mprotect(void)
{
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    memset(p, 0x5a, 2 * PAGE);
    check("mprotect-prot-mte", mprotect(p, 2 * PAGE, PROT_READ | PROT_WRITE |
                                        PROT_MTE) == 0);
    check("mprotect-data-kept", p[0] == 0x5a && p[2 * PAGE - 1] == 0x5a);
    check("mprotect-tags-zero", ldg(p) == 0 && ldg(p + PAGE) == 0);
    stg(with_tag(p + PAGE, 7));
    check("mprotect-stg", ldg(p + PAGE) == 7 &&
          FAULT_CODE(load(p + PAGE)) == SEGV_MTESERR);
    report_tagged(p, 2 * PAGE);
    munmap(p, 2 * PAGE);
}

static void test_reset(void)
{
    char *p = map_mte(PAGE);

    stg(with_tag(p, 6));
    store(with_tag(p, 6), 77);
    report_tagged(p, PAGE);
    check("madvise-dontneed", madvise(p, PAGE, MADV_DONTNEED) == 0);
    check("dontneed-tags-reset", ldg(p) == 0 && load(p) == 0);
    report_tagged(p, PAGE);
    munmap(p, PAGE);

    p = map_mte(PAGE);
    check("remap-tags-zero", p && ldg(p) == 0);
    stg(with_tag(p, 2));
    report_tagged(p, PAGE);
    munmap(p, PAGE);
}

static void test_many_pages(void)
{
    const size_t len = 64UL << 20;      /* tags span 2 MiB of tag storage */
    char *p = map_mte(len);
    int ok = 1;

    if (!p) {
        check("many-pages-mmap", 0);
        return;
    }
    for (size_t off = 0; off < len; off += PAGE) {
        unsigned t = (off / PAGE) & 15;

        stg(with_tag(p + off, t));
        stg(with_tag(p + off + PAGE - GRANULE, 15 - t));
    }
    for (size_t off = 0; off < len; off += PAGE) {
        unsigned t = (off / PAGE) & 15;

        ok &= ldg(p + off) == t && ldg(p + off + PAGE - GRANULE) == 15 - t &&
              ldg(p + off + GRANULE) == 0;
    }
    check("many-pages-tags", ok);
    check("many-pages-fault",
          FAULT_CODE(load(with_tag(p + len - PAGE, 3))) == SEGV_MTESERR);
    report_tagged(p, len);
    munmap(p, len);
}

/* glibc heap tagging: a child re-executed with the tunable set */
static void test_heap_tagging(const char *self)
{
    pid_t pid = fork();
    int st;

    if (pid == 0) {
        char *argv[] = { (char *)self, (char *)"--heap-child", NULL };
        char *envp[] = { (char *)"GLIBC_TUNABLES=glibc.mem.tagging=3", NULL };

        execve(self, argv, envp);
        _exit(3);
    }
    waitpid(pid, &st, 0);
    check("heap-tagging", WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int heap_child(void)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    char *a = malloc(48);
    unsigned long map_start = 0, map_end = 0;
    char line[256];
    FILE *maps;
    int ret = 0;

    sigaction(SIGSEGV, &sa, NULL);
    printf("# heap pointer %p\n", a);
    if (((uintptr_t)a >> 56) == 0) {
        printf("# libc does not tag the heap\n");
        return 2;
    }
    a[47] = 1;
    /* the allocation's granules carry the pointer's tag, others fault */
    if (ldg(a) != ((uintptr_t)a >> 56 & 15) ||
        ldg(a + 32) != ((uintptr_t)a >> 56 & 15)) {
        ret = 1;
    } else if (FAULT_CODE(store(with_tag(a, ((uintptr_t)a >> 56) + 1), 1)) !=
               SEGV_MTESERR) {
        ret = 1;
    }
    /* every mapping glibc made with PROT_MTE ("mt" in VmFlags) */
    maps = fopen("/proc/self/smaps", "r");
    while (maps && fgets(line, sizeof(line), maps)) {
        unsigned long s, e;

        /* a mapping's first line: "start-end perms ..." */
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
            map_start = s;
            map_end = e;
        } else if (!strncmp(line, "VmFlags:", 8) && strstr(line, " mt") &&
                   map_end > map_start) {
            report_tagged((void *)map_start, map_end - map_start);
        }
    }
    if (maps) {
        fclose(maps);
    }
    return ret;
}

/* malloc-heavy workload with heap tagging, for bench/ */
static int heap_bench(void)
{
    enum { SLOTS = 4096, ROUNDS = 400000 };
    static char *slot[SLOTS];
    unsigned seed = 12345;
    unsigned long sum = 0;

    for (int i = 0; i < ROUNDS; i++) {
        unsigned r, n;

        seed = seed * 1103515245 + 12345;
        r = seed >> 8;
        n = r % SLOTS;
        free(slot[n]);
        slot[n] = malloc(16 + (r >> 12) % 2048);
        memset(slot[n], i, 16);
        sum += (unsigned char)slot[n][7] + ((uintptr_t)slot[n] >> 56);
    }
    printf("heap-bench: %d rounds, tagged pointers: %s, sum %lu\n", ROUNDS,
           (uintptr_t)slot[0] >> 56 || (uintptr_t)slot[1] >> 56 ? "yes" : "no",
           sum);
    return 0;
}

/* ---- device tree and the reuse probe (carveout.h) ---- */

static void show_layout(TagStorage *ts, int *have)
{
    unsigned char reg[16];
    char line[256];
    FILE *f;

    if (read_file("/proc/device-tree/memory@40000000/reg", reg, 16) == 16) {
        ts->tagged_base = be64(reg);
        ts->tagged_size = be64(reg + 8);
    }
    *have = find_tag_storage("/proc/device-tree", ts) ||
            find_tag_storage("/proc/device-tree/reserved-memory", ts);
    if (!*have && ts->host_size) {
        /* ACPI: no device tree; the host said where the carveout is */
        snprintf(ts->node, sizeof(ts->node), "/proc/device-tree(none)");
        ts->base = ts->host_base;
        ts->size = ts->host_size;
        *have = 1;
    }
    printf("LAYOUT tagged-ram 0x%llx+0x%llx\n",
           (unsigned long long)ts->tagged_base,
           (unsigned long long)ts->tagged_size);
    if (*have) {
        printf("LAYOUT tag-storage %s 0x%llx+0x%llx block-size 0x%x\n",
               ts->node + strlen("/proc/device-tree"),
               (unsigned long long)ts->base, (unsigned long long)ts->size,
               ts->block_size);
    } else {
        printf("LAYOUT tag-storage none\n");
    }
    f = fopen("/proc/iomem", "r");
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long a, b;

        if (sscanf(line, " %llx-%llx", &a, &b) == 2 && *have &&
            a <= ts->base + ts->size - 1 && b >= ts->base) {
            printf("IOMEM %s", line);
        }
    }
    if (f) {
        fclose(f);
    }
}

/*
 * The kernel leaves the carveout alone: it is no System RAM (v1, v2), or
 * System RAM that is entirely reserved (v3).
 */
static void test_carveout_untouched(TagStorage *ts)
{
    char line[256];
    int in_ram = 0, reserved = 0;
    FILE *f = fopen("/proc/iomem", "r");

    while (f && fgets(line, sizeof(line), f)) {
        unsigned long long a, b;

        if (sscanf(line, " %llx-%llx", &a, &b) != 2 ||
            a > ts->base + ts->size - 1 || b < ts->base) {
            continue;
        }
        if (strstr(line, "System RAM")) {
            in_ram = 1;
        }
        if (strstr(line, "reserved") && a <= ts->base &&
            b >= ts->base + ts->size - 1) {
            reserved = 1;
        }
    }
    if (f) {
        fclose(f);
    }
    check("carveout-not-used-as-ram", !in_ram || reserved);
}

/*
 * The host passes "mts.carveout=BASE,SIZE": where it put the carveout,
 * whether or not the guest was told (under ACPI it is told nothing).
 */
static void carveout_from_cmdline(const char *cmdline, TagStorage *ts)
{
    const char *p = strstr(cmdline, "mts.carveout=");
    unsigned long long base, size;

    if (p && sscanf(p, "mts.carveout=%llx,%llx", &base, &size) == 2) {
        ts->host_base = base;
        ts->host_size = size;
    }
}

/* The kernel's RAM is the tagged RAM at most, never the carveout too */
static void test_mem_total(TagStorage *ts)
{
    char line[256];
    unsigned long long kb = 0;
    FILE *f = fopen("/proc/meminfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    printf("# MemTotal %llu kB, tagged RAM %llu kB\n", kb,
           (unsigned long long)ts->host_size * 32 / 1024);
    check("carveout-mem-total",
          kb && kb * 1024 <= ts->host_size * 32);
}

static __attribute__((noinline)) void test_reuse_probe(TagStorage *ts)
{
    char *p = map_mte(PAGE);
    uint64_t pa, tag_pa, off;
    volatile uint8_t *tags;     /* volatile: device memory */
    void *map;
    int ok = 1;

    stg(with_tag(p, 1));        /* fault it in */
    pa = pfn_of(p) * PAGE;
    check("probe-pagemap", pa >= ts->tagged_base &&
          pa < ts->tagged_base + ts->tagged_size);
    tag_pa = ts->base + (pa - ts->tagged_base) / 32;
    off = tag_pa & (PAGE - 1);
    printf("# probe: page 0x%llx, its tags at 0x%llx\n",
           (unsigned long long)pa, (unsigned long long)tag_pa);

    map = carveout_map(tag_pa - off, PAGE);
    check("probe-devmem-map", map != NULL);
    if (!map) {
        return;
    }
    tags = (volatile uint8_t *)map + off;

    /* tags set by STG are carveout bytes */
    for (unsigned i = 0; i < PAGE / GRANULE; i++) {
        stg(with_tag(p + i * GRANULE, (i * 3) & 15));
    }
    for (unsigned j = 0; j < PAGE / 32; j++) {
        ok &= tags[j] == (((2 * j * 3) & 15) | (((2 * j + 1) * 3) & 15) << 4);
    }
    check("probe-stg-visible-as-data", ok);
    /*
     * QEMU's reuse checker reports 20 violations a second: start a new
     * second, so that the reports of the R1s below are not all dropped
     */
    usleep(1100 * 1000);

    /* a data write to the carveout is the tag */
    store(with_tag(p, 0), 55);
    tags[0] = 0x9a;
    check("probe-data-write-ldg", ldg(p) == 0xa && ldg(p + GRANULE) == 0x9);
    check("probe-old-tag-faults",
          FAULT_CODE(load(with_tag(p, 0))) == SEGV_MTESERR);
    check("probe-new-tag-loads", load(with_tag(p, 0xa)) == 55);
    munmap(map, PAGE);
    report_tagged(p, PAGE);
    munmap(p, PAGE);
}

/*
 * guest/tests/thumb.sh: Thumb-2 (AArch32) and A64 processes storing data
 * into the carveout at once, interleaving on one CPU and running in
 * parallel on several (thumb-carveout.c); each worker prints its own
 * "ok ..." line, this prints one check per worker and how it ended.
 */
static void test_carveout_workers(void)
{
    static const char *const prog[] = { "/thumb-carveout", "/a64-carveout" };
    enum { WORKERS = 4 };
    pid_t pid[WORKERS];
    char slot[WORKERS][8], nslots[8];

    snprintf(nslots, sizeof(nslots), "%d", WORKERS);
    for (int i = 0; i < WORKERS; i++) {
        snprintf(slot[i], sizeof(slot[i]), "%d", i);
        pid[i] = fork();
        if (pid[i] == 0) {
            char *args[] = { (char *)prog[i % 2], slot[i], nslots, NULL };

            execv(args[0], args);
            _exit(127);
        }
    }
    for (int i = 0; i < WORKERS; i++) {
        char name[32];
        int st = 0;

        waitpid(pid[i], &st, 0);
        if (WIFSIGNALED(st)) {
            printf("# %s slot %d killed by signal %d (%s)\n", prog[i % 2], i,
                   WTERMSIG(st), strsignal(WTERMSIG(st)));
        } else if (WEXITSTATUS(st)) {
            printf("# %s slot %d exit status %d\n", prog[i % 2], i,
                   WEXITSTATUS(st));
        }
        snprintf(name, sizeof(name), "%s-%d", prog[i % 2] + 1, i);
        check(name, WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

/*
 * mts.selftests (guest/tests/reuse-selftests.sh): the kernel's arm64 MTE
 * selftests, the programs in /selftests (guest/build-mte-selftests.sh),
 * one at a time, in name order.  Their KTAP output is relayed as
 * "# NAME: LINE"; each subtest becomes a check "ok|not ok
 * selftest/NAME/N" ("skip selftest/NAME/N" when it skipped: not a check),
 * each program "SELFTEST NAME pass|fail|skip HOW ok=N fail=N skip=N"
 * (HOW: exit=N, signal=N or timeout=S; exit 4 is kselftest's KSFT_SKIP,
 * the kernel lacks what the program tests) and the check
 * "selftest/NAME" (again "skip ..." for a skip), then "SELFTESTS run=N
 * pass=N fail=N skip=N" and "VMSTAT NAME BEFORE AFTER" for the kernel's
 * tag storage, CMA and migration counters (guest/reuse-workload.c's
 * format; BEFORE -1 if it appeared meanwhile).  The kernel's messages
 * are held back from the console while a program runs and printed after
 * it as "# kernel: ..." lines; "KMSG warnings=N" counts the WARNING, BUG
 * and Oops lines among them.
 */
#define SELFTEST_TIMEOUT 300    /* seconds per program; TCG is slow */

/* one line of NAME's output: relay it, count its subtest verdict */
static void selftest_line(const char *name, const char *line, int sub[3])
{
    const char *p = line;
    int bad = 0;
    unsigned n;
    int len = 0;

    printf("# %s: %s\n", name, line);
    if (!strncmp(p, "not ok ", 7)) {
        bad = 1;
        p += 7;
    } else if (!strncmp(p, "ok ", 3)) {
        p += 3;
    } else {
        return;
    }
    if (sscanf(p, "%u%n", &n, &len) != 1) {
        return;
    }
    /* kselftest's skips are "ok N # SKIP ...", its XFAILs count as ok */
    if (!bad && strstr(p + len, "# SKIP")) {
        printf("skip selftest/%s/%u\n", name, n);
        sub[2]++;
        return;
    }
    printf("%s selftest/%s/%u\n", bad ? "not ok" : "ok", name, n);
    bad ? failures++ : passes++;
    sub[bad]++;
}

static void run_selftest(const char *name, int tally[3])
{
    char path[300], buf[4096];
    char *args[] = { path, NULL };
    int fds[2], st = 0, sub[3] = { 0, 0, 0 }, done = 0, timed_out = 0;
    size_t len = 0;
    time_t end, done_at = 0;
    pid_t pid;
    const char *verdict;
    char how[32];

    snprintf(path, sizeof(path), "/selftests/%s", name);
    if (pipe(fds)) {
        printf("not ok selftest/%s pipe: %s\n", name, strerror(errno));
        failures++;
        tally[1]++;
        return;
    }
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* its own process group: leftover children are killed with it */
        setpgid(0, 0);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(path, args);
        printf("exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    setpgid(pid, pid);
    end = time(NULL) + SELFTEST_TIMEOUT;
    for (;;) {
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        char *s, *nl;

        if (poll(&pfd, 1, 200) > 0) {
            ssize_t k = read(fds[0], buf + len, sizeof(buf) - 1 - len);

            if (k <= 0) {
                break;          /* EOF: every writer has gone */
            }
            len += k;
            buf[len] = 0;
            for (s = buf; (nl = strchr(s, '\n')); s = nl + 1) {
                *nl = 0;
                selftest_line(name, s, sub);
            }
            len -= s - buf;
            memmove(buf, s, len);
            if (len == sizeof(buf) - 1) {       /* a very long line */
                buf[len] = 0;
                selftest_line(name, buf, sub);
                len = 0;
            }
        }
        if (!done && waitpid(pid, &st, WNOHANG) == pid) {
            /* children it left behind would hold the pipe open */
            done = 1;
            done_at = time(NULL);
            kill(-pid, SIGKILL);
        }
        if (!done && !timed_out && time(NULL) > end) {
            timed_out = 1;
            kill(-pid, SIGKILL);
        }
        if (done && time(NULL) > done_at + 5) {
            break;              /* a writer outside its process group */
        }
    }
    if (len) {
        buf[len] = 0;
        selftest_line(name, buf, sub);
    }
    close(fds[0]);
    if (!done) {
        waitpid(pid, &st, 0);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
        /* reap what PID 1 inherited from it */
    }
    if (timed_out) {
        snprintf(how, sizeof(how), "timeout=%d", SELFTEST_TIMEOUT);
    } else if (WIFSIGNALED(st)) {
        snprintf(how, sizeof(how), "signal=%d", WTERMSIG(st));
    } else {
        snprintf(how, sizeof(how), "exit=%d", WEXITSTATUS(st));
    }
    if (!timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        verdict = "pass";
        tally[0]++;
    } else if (!timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 4) {
        verdict = "skip";
        tally[2]++;
    } else {
        verdict = "fail";
        tally[1]++;
    }
    printf("SELFTEST %s %s %s ok=%d fail=%d skip=%d\n", name, verdict, how,
           sub[0], sub[1], sub[2]);
    snprintf(path, sizeof(path), "selftest/%s", name);
    if (*verdict == 's') {
        printf("skip %s\n", path);
    } else {
        check(path, *verdict == 'p');
    }
}

/* the /proc/vmstat counters of tag storage reuse (the RFC's, CMA's) */
enum { MAX_VM = 32 };
typedef struct {
    int n;
    char name[MAX_VM][48];
    long long val[MAX_VM];
} ReuseStat;

static void reuse_stat(ReuseStat *v)
{
    FILE *f = fopen("/proc/vmstat", "r");
    char name[48];
    long long val;

    v->n = 0;
    while (f && v->n < MAX_VM && fscanf(f, "%47s %lld", name, &val) == 2) {
        if (!strncmp(name, "tag_storage_", 12) ||
            !strncmp(name, "cma_alloc_", 10) ||
            !strncmp(name, "pgmigrate_", 10)) {
            snprintf(v->name[v->n], sizeof(v->name[0]), "%s", name);
            v->val[v->n++] = val;
        }
    }
    if (f) {
        fclose(f);
    }
}

/*
 * The kernel's messages since the last call, from /dev/kmsg @fd, as
 * "# kernel: [SECONDS] TEXT" lines (the console shows none meanwhile: they
 * would cut the selftests' lines); returns how many are warnings.
 */
static int kernel_lines(int fd)
{
    char rec[1024];
    unsigned long long us;
    int warnings = 0;
    ssize_t k;

    while (fd >= 0 &&
           ((k = read(fd, rec, sizeof(rec) - 1)) > 0 ||
            (k < 0 && errno == EPIPE))) {
        char *msg, *nl;

        if (k < 0) {
            printf("# kernel: (messages lost: the log wrapped)\n");
            continue;
        }
        rec[k] = 0;
        msg = strchr(rec, ';');
        if (!msg || sscanf(rec, "%*u,%*u,%llu", &us) != 1) {
            continue;
        }
        msg++;
        nl = strchr(msg, '\n');        /* then the record's dictionary */
        if (nl) {
            *nl = 0;
        }
        printf("# kernel: [%5llu.%06llu] %s\n", us / 1000000, us % 1000000,
               msg);
        if (strstr(msg, "WARNING") || strstr(msg, "BUG") ||
            strstr(msg, "Oops")) {
            warnings++;
        }
    }
    return warnings;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_selftests(void)
{
    DIR *d = opendir("/selftests");
    struct dirent *e;
    char *names[64];
    int n = 0, tally[3] = { 0, 0, 0 };
    ReuseStat v0, v1;
    int kmsg, warnings = 0;
    char level[16] = "";

    /* kselftest's environment: the tests make files in /dev/shm */
    mkdir("/dev/shm", 01777);
    mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL);
    while (d && (e = readdir(d)) && n < 64) {
        if (e->d_name[0] != '.') {
            names[n++] = strdup(e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    qsort(names, n, sizeof(names[0]), cmp_names);
    printf("MTS guest: %d arm64 MTE selftests\n", n);
    check("selftests-found", n > 0);
    reuse_stat(&v0);
    /* kernel messages after each program, not in the middle of its lines */
    kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    if (kmsg >= 0) {
        lseek(kmsg, 0, SEEK_END);
        read_file("/proc/sys/kernel/printk", level, sizeof(level) - 1);
        klogctl(8, NULL, 1);    /* SYSLOG_ACTION_CONSOLE_LEVEL: emerg only */
    }
    for (int i = 0; i < n; i++) {
        run_selftest(names[i], tally);
        warnings += kernel_lines(kmsg);
    }
    if (kmsg >= 0) {
        klogctl(8, NULL, atoi(level) > 0 ? atoi(level) : 7);
        close(kmsg);
    }
    /* what the kernel did with tag storage meanwhile, as reuse-workload */
    reuse_stat(&v1);
    for (int i = 0; i < v1.n; i++) {
        printf("VMSTAT %s %lld %lld\n", v1.name[i],
               i < v0.n && !strcmp(v0.name[i], v1.name[i]) ? v0.val[i] : -1,
               v1.val[i]);
    }
    printf("SELFTESTS run=%d pass=%d fail=%d skip=%d\n", n, tally[0],
           tally[1], tally[2]);
    printf("KMSG warnings=%d\n", warnings);
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };
    TagStorage ts = { 0 };
    int have_ts = 0;
    char cmdline[512] = "";

    if (argc > 1 && !strcmp(argv[1], "--heap-child")) {
        return heap_child();
    }
    if (argc > 1 && !strcmp(argv[1], "--heap-bench")) {
        return heap_bench();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    read_file("/proc/cmdline", cmdline, sizeof(cmdline) - 1);
    sigaction(SIGSEGV, &sa, NULL);

    if (strstr(cmdline, "mts.bench=heap")) {
        /* bench/: a tagged-heap workload instead of the checks */
        pid_t pid = fork();

        if (pid == 0) {
            char *args[] = { argv[0], (char *)"--heap-bench", NULL };
            char *envp[] = { (char *)"GLIBC_TUNABLES=glibc.mem.tagging=1",
                             NULL };

            execve(argv[0], args, envp);
            _exit(3);
        }
        waitpid(pid, NULL, 0);
        reboot(RB_POWER_OFF);
    }

    if (strstr(cmdline, "mts.dma")) {
        /* guest/tests/dma.sh: /virtio-dma instead of the checks */
        pid_t pid = fork();

        if (pid == 0) {
            char *args[] = { (char *)"/virtio-dma", NULL };

            execv(args[0], args);
            printf("not ok virtio-dma-exec\nRESULT pass=0 fail=1\nFAIL\n");
            _exit(3);
        }
        waitpid(pid, NULL, 0);
        sync();
        reboot(RB_POWER_OFF);
    }

    if (strstr(cmdline, "mts.smp=")) {
        /* guest/tests/smp.sh: /smp-stress MODE instead of the checks */
        char mode[64] = "";
        char *args[] = { (char *)"/smp-stress", mode, NULL };

        sscanf(strstr(cmdline, "mts.smp=") + 8, "%63s", mode);
        execv(args[0], args);
        printf("not ok smp-stress-exec\nRESULT pass=0 fail=1\nFAIL\n");
        sync();
        reboot(RB_POWER_OFF);
    }

    if (strstr(cmdline, "mts.reuse=")) {
        /*
         * guest/tests/reuse-kernel.sh: /reuse-workload THREADS[,MODE]
         * instead of the checks, as PID 1 (its tagged pages must outlive it)
         */
        char mode[161] = "1";
        char *args[] = { (char *)"/reuse-workload", mode, NULL };

        sscanf(strstr(cmdline, "mts.reuse=") + 10, "%160s", mode);
        execv(args[0], args);
        printf("not ok reuse-workload-exec\nRESULT pass=0 fail=1\nFAIL\n");
        sync();
        reboot(RB_POWER_OFF);
    }

    if (strstr(cmdline, "mts.selftests")) {
        /* guest/tests/reuse-selftests.sh: the kernel's MTE selftests */
        run_selftests();
        printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
               failures || !passes ? "FAIL" : "PASS");
        sync();
        reboot(RB_POWER_OFF);
    }

    if (strstr(cmdline, "mts.thumb")) {
        /* guest/tests/thumb.sh: the carveout workers instead of the checks */
        printf("MTS guest: Thumb-2 and A64 data in the carveout\n");
        test_carveout_workers();
        printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
               failures || !passes ? "FAIL" : "PASS");
        sync();
        reboot(RB_POWER_OFF);
    }

    printf("MTS guest: mte-tag-storage Linux checks\n");
    carveout_from_cmdline(cmdline, &ts);
    show_layout(&ts, &have_ts);
    if (have_ts) {
        test_carveout_untouched(&ts);
    }
    if (ts.host_size) {
        test_mem_total(&ts);
    }
    test_basic();
    test_async();
    test_fork_cow();
    test_mprotect();
    test_reset();
    test_many_pages();
    test_heap_tagging(argv[0]);
    if (have_ts && strstr(ts.node, "/metadata@")) {
        test_reuse_probe(&ts);
    }
    printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
           failures || !passes ? "FAIL" : "PASS");

    if (strstr(cmdline, "mts.shell")) {
        char *sh[] = { (char *)"/bin/sh", NULL };

        printf("starting /bin/sh; 'poweroff -f' to leave\n");
        execv(sh[0], sh);
        printf("no /bin/sh in this initramfs\n");
    }
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
