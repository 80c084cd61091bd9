/*
 * Finding and mapping the tag storage carveout from a Linux guest
 * program: shared by /init (mte-init.c, the reuse probe) and the
 * carveout workers (thumb-carveout.c, built for A64 and for AArch32
 * Thumb-2), so every program finds it the same way.
 *
 * The carveout is described by a device tree node with compatible
 * "arm,mte-tag-storage" (/metadata@... with binding v1, /tag-storage@...
 * with v2, under /reserved-memory with v3).  With v1 and v2 it is no
 * System RAM, so STRICT_DEVMEM lets /dev/mem map it; the kernel maps it
 * as Device memory: accesses through the mapping must be aligned.
 *
 * Copyright (c) 2026 The mte-tag-storage authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MTS_GUEST_CARVEOUT_H
#define MTS_GUEST_CARVEOUT_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

/* the carveout lies above 2 GiB: a 32-bit off_t cannot reach it */
_Static_assert(sizeof(off_t) == 8,
               "define _FILE_OFFSET_BITS 64 before including carveout.h");

static inline int read_file(const char *path, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY), n;

    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, len);
    close(fd);
    return n;
}

/* device tree cells are big-endian */
static inline uint64_t be64(const unsigned char *b)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | b[i];
    }
    return v;
}

typedef struct TagStorage {
    char node[600];
    uint64_t base, size, tagged_base, tagged_size;
    uint32_t block_size;
    uint64_t host_base, host_size;  /* all carveouts, from the host */
} TagStorage;

/*
 * Look for the "arm,mte-tag-storage" node among the children of @dir
 * (/proc/device-tree, or its reserved-memory); fills @ts's node, base,
 * size and block size.  Returns whether it found one.
 */
static inline int find_tag_storage(const char *dir, TagStorage *ts)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[700], buf[64];
    int found = 0;

    if (!d) {
        return 0;
    }
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/compatible", dir, e->d_name);
        memset(buf, 0, sizeof(buf));
        if (read_file(path, buf, sizeof(buf) - 1) > 0 &&
            !strcmp(buf, "arm,mte-tag-storage")) {
            unsigned char reg[16] = { 0 }, bs[4] = { 0 };

            snprintf(ts->node, sizeof(ts->node), "%s/%s", dir, e->d_name);
            snprintf(path, sizeof(path), "%s/reg", ts->node);
            read_file(path, reg, 16);
            ts->base = be64(reg);
            ts->size = be64(reg + 8);
            snprintf(path, sizeof(path), "%s/block-size", ts->node);
            read_file(path, bs, 4);
            ts->block_size = bs[0] << 24 | bs[1] << 16 | bs[2] << 8 | bs[3];
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/*
 * Map @len bytes of physical memory at @pa (page aligned) through
 * /dev/mem, read-write; NULL on failure.  O_SYNC asks for an uncached
 * mapping; outside System RAM the kernel maps Device memory anyway.
 */
static inline void *carveout_map(uint64_t pa, size_t len)
{
    int fd = open("/dev/mem", O_RDWR | O_SYNC);
    void *map;

    if (fd < 0) {
        return NULL;
    }
    map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)pa);
    close(fd);
    return map == MAP_FAILED ? NULL : map;
}

#endif /* MTS_GUEST_CARVEOUT_H */
