/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk images of the QEMU that runs the exec: helper, from its open
 * descriptors (BINDING.md, "Through the exec: helper"): a stock QEMU
 * tells nobody its block graph, but it keeps every image of it open,
 * backing files included, for as long as it runs.
 */
#include "parent-disks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The open flags of descriptor @name, from fdinfo; -1 if unknown. */
static long fd_flags(int dir, const char *name)
{
    char path[300], line[128];
    long flags = -1;
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "fdinfo/%s", name);
    fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !(f = fdopen(fd, "r"))) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "flags:", 6)) {
            flags = strtol(line + 6, NULL, 8);
            break;
        }
    }
    fclose(f);
    return flags;
}

/* Whether QEMU maps a file of identity @st (RAM, libraries): no disk. */
static bool mapped(int dir, const struct stat *st)
{
    char line[4096];
    bool found = false;
    FILE *f;
    int fd = openat(dir, "maps", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || !(f = fdopen(fd, "r"))) {
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned maj, min;
        unsigned long ino;

        if (sscanf(line, "%*x-%*x %*s %*x %x:%x %lu", &maj, &min, &ino) == 3 &&
            ino == (unsigned long)st->st_ino &&
            maj == major(st->st_dev) && min == minor(st->st_dev)) {
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* The value of -pidfile in @argv, or NULL. */
static const char *pidfile(const char *argv, size_t len)
{
    for (size_t i = 0; i < len; i += strlen(argv + i) + 1) {
        const char *a = argv + i;

        if ((!strcmp(a, "-pidfile") || !strcmp(a, "--pidfile")) &&
            i + strlen(a) + 1 < len) {
            return a + strlen(a) + 1;
        }
    }
    return NULL;
}

int parent_disks_find(int dir, const char *argv, size_t argv_len,
                      CprDisk **out, uint32_t *nr)
{
    const char *pid_path = pidfile(argv, argv_len);
    GArray *disks = g_array_new(false, true, sizeof(CprDisk));
    struct dirent *e;
    DIR *fds;
    int fd = openat(dir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    *out = NULL;
    *nr = 0;
    if (fd < 0 || !(fds = fdopendir(fd))) {
        int err = errno;

        if (fd >= 0) {
            close(fd);
        }
        g_array_free(disks, true);
        errno = err;
        return -1;
    }
    while ((e = readdir(fds))) {
        char link[300], target[4097];
        struct stat st;
        ssize_t n;
        long flags;
        CprDisk d;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(link, sizeof(link), "fd/%s", e->d_name);
        n = readlinkat(dir, link, target, sizeof(target) - 1);
        if (n <= 0 || target[0] != '/' || fstatat(dir, link, &st, 0) < 0) {
            continue;
        }
        target[n] = 0;
        /* Images are files or block devices QEMU reads, or reads and
         * writes in place; logs are write-only or appended; RAM mapped. */
        if ((!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) ||
            g_str_has_suffix(target, " (deleted)") ||
            (flags = fd_flags(dir, e->d_name)) < 0 ||
            (flags & O_ACCMODE) == O_WRONLY || (flags & O_APPEND) ||
            (pid_path && !strcmp(pid_path, target)) || mapped(dir, &st)) {
            continue;
        }
        d = (CprDisk){
            .node_name = "", .filename = g_strdup(target),
            .driver = S_ISBLK(st.st_mode) ? "host_device" : "file",
            .size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
            .flags = CPR_DISK_PROTOCOL |
                     ((flags & O_ACCMODE) == O_RDONLY ? CPR_DISK_READ_ONLY : 0),
        };
        g_array_append_val(disks, d);
    }
    closedir(fds);
    *nr = disks->len;
    *out = (CprDisk *)g_array_free(disks, false);
    return 0;
}

void parent_disks_free(CprDisk *disks, uint32_t nr)
{
    for (uint32_t i = 0; i < nr; i++) {
        g_free((char *)disks[i].filename);
    }
    g_free(disks);
}
