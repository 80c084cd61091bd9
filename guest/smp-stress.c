/*
 * /smp-stress of the Linux test guest: MTE on every CPU at once, started
 * by /init (mte-init.c) as "/smp-stress MODE" when the kernel command
 * line has mts.smp=MODE.  guest/tests/smp.sh runs it.
 *
 * mts.smp=work
 *   A fork- and thread-heavy tagged workload: WORK_PROCS processes of
 *   WORK_THREADS threads each, for about WORK_SECONDS seconds, map
 *   PROT_MTE memory, tag it with IRG and STG, check it with LDG and
 *   checked loads, provoke and catch synchronous and asynchronous tag
 *   check faults, and fork children that check that the tags survive
 *   copy-on-write.  The verdicts do not depend on timing.
 *
 * mts.smp=stop,K
 *   The reuse checker's stop policy on several CPUs at once (needs the
 *   tag storage carveout outside the memory nodes: tag-storage-binding=v1).
 *   One thread pinned to each online CPU tags a page of its own with STG,
 *   maps the carveout bytes that hold the page's tags through /dev/mem and,
 *   after a barrier, reads them as data K times (rule R2 each time), all
 *   from the one load instruction at smp_stop_load_insn.
 *   Prints "SMP-STOP-START cpu=N pc=0x... page=0x... tags=0x..." before
 *   and "SMP-STOP cpu=N pc=0x... reads=K" after the reads.
 *
 * Output: "ok <name>" / "not ok <name>" per check, then
 * "RESULT pass=<n> fail=<n>" and PASS or FAIL, then power off (this
 * program is PID 1), as mte-init.c does.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/wait.h>

#include "carveout.h"
#include "mte.h"

#define MAX_CPUS 64

#define WORK_PROCS 4
#define WORK_THREADS 4
#define WORK_PAGES 4
#define WORK_SECONDS 3

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static int passes, failures;

static void check(const char *name, int ok)
{
    pthread_mutex_lock(&out_lock);
    printf("%s %s\n", ok ? "ok" : "not ok", name);
    fflush(stdout);
    ok ? passes++ : failures++;
    pthread_mutex_unlock(&out_lock);
}

static void finish(void)
{
    printf("RESULT pass=%d fail=%d\n%s\n", passes, failures,
           failures || !passes ? "FAIL" : "PASS");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    exit(failures ? 1 : 0);     /* only when not PID 1 */
}

static uint64_t load(void *p)
{
    return *(volatile uint64_t *)p;      /* volatile: the access is the test */
}

static void store(void *p, uint64_t v)
{
    *(volatile uint64_t *)p = v;         /* volatile: the access is the test */
}

/* ---- tag check faults, caught per thread ---- */

static __thread sigjmp_buf fault_jmp;
static __thread volatile sig_atomic_t fault_code;   /* set by the handler */
static __thread void *volatile fault_addr;  /* set by the handler */
static __thread volatile sig_atomic_t fault_armed;  /* read by the handler */

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

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- mts.smp=work ---- */

/* Failures and counts of all processes, in memory shared by fork */
typedef struct WorkStats {
    unsigned long rounds, tagged_granules, sync_faults, async_faults, cows;
    unsigned long bad_tags, bad_sync, bad_async, bad_cow, bad_setup;
    unsigned long cpus_seen;    /* bit N: a thread ran on CPU N */
    unsigned long threads_done;
} WorkStats;

static WorkStats *stats;

#define STAT_ADD(field, n) __atomic_fetch_add(&stats->field, (n), \
                                              __ATOMIC_RELAXED)

static void note_cpu(void)
{
    int cpu = sched_getcpu();

    if (cpu >= 0 && cpu < 64) {
        __atomic_fetch_or(&stats->cpus_seen, 1UL << cpu, __ATOMIC_RELAXED);
    }
}

/*
 * One round of a worker thread: tag WORK_PAGES pages with random tags
 * (IRG), store through the tagged pointers, check tags and data, fault
 * synchronously and asynchronously, fork a child that checks the tags
 * across copy-on-write.
 */
static void work_round(unsigned seed)
{
    enum { GRANULES = WORK_PAGES * PAGE / GRANULE };
    uint8_t tags[GRANULES];
    char *p = map_mte(WORK_PAGES * PAGE);
    unsigned long bad = 0;
    pid_t pid;
    int st;

    if (!p) {
        STAT_ADD(bad_setup, 1);
        return;
    }
    for (unsigned i = 0; i < GRANULES; i++) {
        char *q = irg(p + i * GRANULE);

        stg(q);
        store(q, ((uint64_t)seed << 32) | i);
        tags[i] = tag_of(q);
        bad += tags[i] == 0;            /* excluded by the prctl mask */
    }
    note_cpu();
    sched_yield();                      /* let tags move between CPUs */
    for (unsigned i = 0; i < GRANULES; i++) {
        char *q = with_tag(p + i * GRANULE, tags[i]);

        bad += ldg(p + i * GRANULE) != tags[i];
        bad += load(q) != (((uint64_t)seed << 32) | i);
    }
    STAT_ADD(tagged_granules, GRANULES);
    STAT_ADD(bad_tags, bad);

    /* synchronous faults: a load and a store with the wrong tag */
    for (unsigned i = seed % 7; i < GRANULES; i += 61) {
        char *q = with_tag(p + i * GRANULE, tags[i]);
        char *wrong = with_tag(q, tags[i] + 1 + seed % 14);

        if (FAULT_CODE(load(wrong)) != SEGV_MTESERR ||
            ((uintptr_t)fault_addr & ADDR_MASK) !=
            ((uintptr_t)wrong & ADDR_MASK) ||
            FAULT_CODE(store(wrong, 1)) != SEGV_MTESERR ||
            load(q) != (((uint64_t)seed << 32) | i)) {
            STAT_ADD(bad_sync, 1);
        } else {
            STAT_ADD(sync_faults, 2);
        }
    }

    /* an asynchronous fault, reported at the next kernel entry */
    if (set_tcf(PR_MTE_TCF_ASYNC) != 0) {
        STAT_ADD(bad_async, 1);
    } else {
        char *q = p + (seed % GRANULES) * GRANULE;
        int code = FAULT_CODE({
            store(with_tag(q, tags[seed % GRANULES] + 1), 7);
            getppid();
            usleep(1000);
        });

        set_tcf(PR_MTE_TCF_SYNC);
        if (code != SEGV_MTEAERR) {
            STAT_ADD(bad_async, 1);
        } else {
            STAT_ADD(async_faults, 1);
        }
        /* the async store went through: put the data back */
        store(with_tag(q, tags[seed % GRANULES]),
              ((uint64_t)seed << 32) | (seed % GRANULES));
    }

    /* fork: the child sees the tags, keeps them across COW, faults */
    pid = fork();
    if (pid == 0) {
        int ok = 1;

        for (unsigned i = 0; i < GRANULES; i += 17) {
            char *q = with_tag(p + i * GRANULE, tags[i]);

            ok &= ldg(q) == tags[i];
            ok &= load(q) == (((uint64_t)seed << 32) | i);
            store(q, 0xc0c0c0c0UL + i);                 /* COW */
            ok &= ldg(q) == tags[i];
            ok &= load(q) == 0xc0c0c0c0UL + i;
        }
        ok &= FAULT_CODE(load(with_tag(p, tags[0] + 5))) == SEGV_MTESERR;
        _exit(ok ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
        STAT_ADD(bad_cow, 1);
    } else {
        /* the parent's copy is unchanged by the child's writes */
        for (unsigned i = 0; i < GRANULES; i += 17) {
            char *q = with_tag(p + i * GRANULE, tags[i]);

            if (ldg(q) != tags[i] ||
                load(q) != (((uint64_t)seed << 32) | i)) {
                STAT_ADD(bad_cow, 1);
                break;
            }
        }
        STAT_ADD(cows, 1);
    }
    note_cpu();
    munmap(p, WORK_PAGES * PAGE);
    STAT_ADD(rounds, 1);
}

static void *work_thread(void *arg)
{
    unsigned id = (uintptr_t)arg;
    double end = now() + WORK_SECONDS;
    unsigned round = 0;

    if (set_tcf(PR_MTE_TCF_SYNC) != 0) {
        STAT_ADD(bad_setup, 1);
        return NULL;
    }
    /* at least two rounds, whatever the speed of the machine */
    while (round < 2 || now() < end) {
        work_round(id * 1000 + round++);
    }
    STAT_ADD(threads_done, 1);
    return NULL;
}

static void work_process(unsigned proc)
{
    pthread_t t[WORK_THREADS];
    int created = 0;

    for (unsigned i = 0; i < WORK_THREADS; i++) {
        if (pthread_create(&t[i], NULL, work_thread,
                           (void *)(uintptr_t)(proc * WORK_THREADS + i)) == 0) {
            created++;
        } else {
            STAT_ADD(bad_setup, 1);
        }
    }
    for (int i = 0; i < created; i++) {
        pthread_join(t[i], NULL);
    }
    _exit(0);
}

static void work(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned long all = ncpu >= 64 ? ~0UL : (1UL << ncpu) - 1;
    pid_t pid[WORK_PROCS];
    int exited = 0, st;

    stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stats == MAP_FAILED) {
        check("work-setup", 0);
        finish();
    }
    printf("# smp-stress work: %d processes x %d threads, %d s, %ld CPUs\n",
           WORK_PROCS, WORK_THREADS, WORK_SECONDS, ncpu);
    fflush(stdout);
    check("work-prctl-sync", set_tcf(PR_MTE_TCF_SYNC) == 0);
    for (unsigned i = 0; i < WORK_PROCS; i++) {
        pid[i] = fork();
        if (pid[i] == 0) {
            work_process(i);
        }
    }
    for (unsigned i = 0; i < WORK_PROCS; i++) {
        if (pid[i] > 0 && waitpid(pid[i], &st, 0) == pid[i] &&
            WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            exited++;
        }
    }
    printf("# work: %lu rounds, %lu granules tagged, %lu sync faults, "
           "%lu async faults, %lu COW forks, CPUs seen 0x%lx\n",
           stats->rounds, stats->tagged_granules, stats->sync_faults,
           stats->async_faults, stats->cows, stats->cpus_seen);
    check("work-processes", exited == WORK_PROCS && !stats->bad_setup &&
          stats->threads_done == WORK_PROCS * WORK_THREADS);
    check("work-tags", stats->tagged_granules && !stats->bad_tags);
    check("work-sync-faults", stats->sync_faults && !stats->bad_sync);
    check("work-async-faults", stats->async_faults && !stats->bad_async);
    check("work-fork-cow", stats->cows && !stats->bad_cow);
    check("work-all-cpus", (stats->cpus_seen & all) == all);
    finish();
}

/* ---- mts.smp=stop,K ---- */

extern const char smp_stop_load_insn[];    /* a label in tag_byte_load() */

/*
 * The one instruction that reads tag storage as data: its address is the
 * PC that the reuse checker reports and stops at.  noclone keeps the
 * label unique.
 */
static __attribute__((noinline, noclone))
uint8_t tag_byte_load(const volatile uint8_t *p)   /* volatile: device memory */
{
    uint32_t v;

    asm volatile(".globl smp_stop_load_insn\n"
                 "smp_stop_load_insn:\n\t"
                 "ldrb %w0, [%1]"
                 : "=r"(v) : "r"(p) : "memory");
    return v;
}

/* The v1 carveout: the "arm,mte-tag-storage" node (carveout.h) */
static int find_carveout(uint64_t *base, uint64_t *size)
{
    TagStorage ts;

    if (!find_tag_storage("/proc/device-tree", &ts)) {
        return 0;
    }
    *base = ts.base;
    *size = ts.size;
    return 1;
}

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

typedef struct StopThread {
    pthread_t thread;
    int cpu;
    int pinned, mapped;
    unsigned long reads, wrong_values;
} StopThread;

static uint64_t ts_base, ts_size, ram_base, ram_size;
static unsigned long stop_reads;
static pthread_barrier_t stop_barrier;

static void *stop_thread(void *arg)
{
    StopThread *t = arg;
    cpu_set_t set;
    char *p = NULL;
    uint64_t pa = 0, tag_pa = 0;
    volatile uint8_t *tags = NULL;     /* volatile: device memory */
    void *map = MAP_FAILED;
    int fd = -1;

    CPU_ZERO(&set);
    CPU_SET(t->cpu, &set);
    t->pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
    sched_yield();
    t->pinned &= sched_getcpu() == t->cpu;

    /* a page of our own, tagged by STG: its carveout bytes are tags now */
    p = map_mte(PAGE);
    if (p) {
        mlock(p, PAGE);
        for (unsigned i = 0; i < PAGE / GRANULE; i++) {
            stg(with_tag(p + i * GRANULE, i * 3 + t->cpu));
        }
        pa = pfn_of(p) * PAGE;
    }
    if (pa >= ram_base && pa < ram_base + ram_size) {
        tag_pa = ts_base + (pa - ram_base) / 32;
        fd = open("/dev/mem", O_RDONLY | O_SYNC);
        if (fd >= 0) {
            map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd,
                       tag_pa & ~(PAGE - 1));
        }
    }
    t->mapped = map != MAP_FAILED;
    if (t->mapped) {
        /* volatile: device memory */
        tags = (volatile uint8_t *)map + (tag_pa & (PAGE - 1));
    }
    pthread_mutex_lock(&out_lock);
    printf("SMP-STOP-START cpu=%d pc=%p page=0x%llx tags=0x%llx\n", t->cpu,
           (void *)smp_stop_load_insn, (unsigned long long)pa,
           (unsigned long long)tag_pa);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);

    /* all CPUs read tag storage as data at the same time */
    pthread_barrier_wait(&stop_barrier);
    if (t->mapped) {
        for (unsigned long i = 0; i < stop_reads; i++) {
            unsigned j = i % (PAGE / 32);
            unsigned lo = (2 * j * 3 + t->cpu) & 15;
            unsigned hi = ((2 * j + 1) * 3 + t->cpu) & 15;

            t->wrong_values += tag_byte_load(tags + j) != (lo | hi << 4);
            t->reads++;
        }
    }
    t->pinned &= sched_getcpu() == t->cpu;

    pthread_mutex_lock(&out_lock);
    printf("SMP-STOP cpu=%d pc=%p reads=%lu\n", t->cpu,
           (void *)smp_stop_load_insn, t->reads);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    if (map != MAP_FAILED) {
        munmap(map, PAGE);
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

static void stop(const char *arg)
{
    StopThread t[MAX_CPUS];
    unsigned char reg[16];
    cpu_set_t online;
    int n = 0;
    char name[64];

    stop_reads = strtoul(arg, NULL, 0);
    check("stop-args", stop_reads > 0);
    check("stop-carveout-v1", find_carveout(&ts_base, &ts_size));
    if (read_file("/proc/device-tree/memory@40000000/reg", reg, 16) == 16) {
        ram_base = be64(reg);
        ram_size = be64(reg + 8);
    }
    printf("# smp-stress stop: %lu reads per CPU, carveout 0x%llx+0x%llx, "
           "load at %p\n", stop_reads, (unsigned long long)ts_base,
           (unsigned long long)ts_size, (void *)smp_stop_load_insn);
    if (failures || sched_getaffinity(0, sizeof(online), &online)) {
        finish();
    }
    for (int cpu = 0; cpu < MAX_CPUS; cpu++) {
        if (CPU_ISSET(cpu, &online)) {
            t[n++] = (StopThread) { .cpu = cpu };
        }
    }
    pthread_barrier_init(&stop_barrier, NULL, n);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i].thread, NULL, stop_thread, &t[i])) {
            check("stop-thread-create", 0);
            finish();       /* the barrier would never open */
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i].thread, NULL);
    }
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "stop-cpu%d-pinned", t[i].cpu);
        check(name, t[i].pinned);
        snprintf(name, sizeof(name), "stop-cpu%d-devmem-map", t[i].cpu);
        check(name, t[i].mapped);
        snprintf(name, sizeof(name), "stop-cpu%d-reads", t[i].cpu);
        check(name, t[i].reads == stop_reads && !t[i].wrong_values);
    }
    finish();
}

int main(int argc, char **argv)
{
    struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGSEGV, &sa, NULL);
    if (argc > 1 && !strcmp(argv[1], "work")) {
        work();
    } else if (argc > 1 && !strncmp(argv[1], "stop,", 5)) {
        stop(argv[1] + 5);
    }
    printf("# usage: smp-stress work|stop,K (mts.smp=...)\n");
    check("smp-stress-mode", 0);
    finish();
    return 1;
}
