/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper runs as root under root's QEMU: it reads /proc of that one
 * process only (through one directory descriptor, so that every file
 * read is that process's, or the read fails once it is gone), and opens
 * the RAM files read-only, never following a symlink, never writing.
 */
#include "parent-vm.h"
#include "parent-disks.h"
#include "cmdline.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* sh -c "cpr-pmem ..." | tee ...: at most this many processes up. */
#define MAX_UP 3

/* A shared mapping of a file, from /proc/PID/maps (contiguous ones of
 * the same file merged). */
typedef struct Mapping {
    uint64_t start, end, offset, ino;
    uint64_t first_end;         /* of the first VMA: its map_files name */
    unsigned dev_major, dev_minor;
    char *path;
    bool claimed;
} Mapping;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash ? slash + 1 : path;
}

/* Whether @exe (a readlink of /proc/PID/exe) is a qemu-system binary. */
static bool is_qemu(const char *exe)
{
    return g_str_has_prefix(base_name(exe), "qemu-system-");
}

static bool is_shell(const char *exe)
{
    static const char *const shells[] = { "sh", "dash", "bash", "busybox" };
    const char *b = base_name(exe);

    for (size_t i = 0; i < G_N_ELEMENTS(shells); i++) {
        if (!strcmp(b, shells[i])) {
            return true;
        }
    }
    return false;
}

bool parent_vm_argv_is_qemu(const char *argv, size_t len)
{
    return len && memchr(argv, 0, len) && is_qemu(argv);
}

/* readlink of @name under @dir, " (deleted)" cut; NULL if it fails. */
static char *read_link_at(int dir, const char *name)
{
    char buf[4096];
    ssize_t n = readlinkat(dir, name, buf, sizeof(buf) - 1);

    if (n < 0) {
        return NULL;
    }
    buf[n] = 0;
    if (g_str_has_suffix(buf, " (deleted)")) {
        buf[n - strlen(" (deleted)")] = 0;
    }
    return g_strdup(buf);
}

/* The parent pid from "stat" under @dir, or -1. */
static pid_t ppid_at(int dir)
{
    char buf[1024], *p;
    int fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    int ppid;

    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return -1;
    }
    buf[n] = 0;
    /* "PID (COMM) STATE PPID ...": COMM may hold anything, ')' too. */
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1) {
        return -1;
    }
    return ppid;
}

static int open_proc(pid_t pid)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* The QEMU above us: its /proc directory, or -1 (none). */
static int find_qemu(ParentVm *pv)
{
    pid_t pid = getppid();

    for (int up = 0; up < MAX_UP && pid > 1; up++) {
        int dir = open_proc(pid);
        char *exe = dir >= 0 ? read_link_at(dir, "exe") : NULL;

        if (exe && is_qemu(exe)) {
            pv->pid = pid;
            pv->exe = exe;
            return dir;
        }
        if (!exe || !is_shell(exe)) {
            g_free(exe);
            if (dir >= 0) {
                close(dir);
            }
            return -1;
        }
        g_free(exe);
        pid = ppid_at(dir);
        close(dir);
    }
    return -1;
}

/* ---- /proc/PID/maps ----------------------------------------------------- */

static void mappings_free(GArray *maps)
{
    for (guint i = 0; maps && i < maps->len; i++) {
        g_free(g_array_index(maps, Mapping, i).path);
    }
    if (maps) {
        g_array_free(maps, TRUE);
    }
}

/* The shared mappings of files (inode != 0) under @dir's "maps". */
static GArray *read_maps(int dir)
{
    int fd = openat(dir, "maps", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    GArray *maps;
    char *line = NULL;
    size_t cap = 0;

    if (!f) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    maps = g_array_new(FALSE, TRUE, sizeof(Mapping));
    while (getline(&line, &cap, f) > 0) {
        Mapping m = { 0 };
        char perms[8];
        int path_at = -1;

        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %"
                   SCNu64 " %n", &m.start, &m.end, perms, &m.offset,
                   &m.dev_major, &m.dev_minor, &m.ino, &path_at) < 7 ||
            path_at < 0 || strlen(perms) < 4 || perms[3] != 's' ||
            m.ino == 0 || line[path_at] != '/') {
            continue;
        }
        g_strchomp(line + path_at);
        if (maps->len) {
            Mapping *p = &g_array_index(maps, Mapping, maps->len - 1);

            if (p->ino == m.ino && p->dev_major == m.dev_major &&
                p->dev_minor == m.dev_minor && p->end == m.start &&
                p->offset + (p->end - p->start) == m.offset) {
                p->end = m.end;
                continue;
            }
        }
        m.first_end = m.end;
        m.path = g_strdup(line + path_at);
        g_array_append_val(maps, m);
    }
    free(line);
    if (ferror(f)) {
        mappings_free(maps);
        maps = NULL;
    }
    fclose(f);
    return maps;
}

/* ---- the command line's memory backends ----------------------------------- */

typedef struct Backend {
    char *id, *mem_path;
    bool share, prealloc, pmem;
} Backend;

static bool is_on(const char *v)
{
    return !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") ||
           !strcmp(v, "y");
}

/*
 * "memory-backend-file,id=X,mem-path=P,share=on,..." (QEMU's key=value
 * syntax, ",," a comma in a value) into @b; false if it is not one.
 */
static bool parse_backend(const char *opt, Backend *b)
{
    GString *cur = g_string_new(NULL);
    bool first = true, file = false;
    const char *p = opt;

    memset(b, 0, sizeof(*b));
    for (;;) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p += 2;
            continue;
        }
        if (*p && *p != ',') {
            g_string_append_c(cur, *p++);
            continue;
        }
        {
            char *eq = strchr(cur->str, '=');
            const char *v = eq ? eq + 1 : "";

            if (eq) {
                *eq = 0;
            }
            if ((first && !eq && !strcmp(cur->str, "memory-backend-file")) ||
                (eq && !strcmp(cur->str, "qom-type") &&
                 !strcmp(v, "memory-backend-file"))) {
                file = true;
            } else if (eq && !strcmp(cur->str, "id")) {
                g_free(b->id);
                b->id = g_strdup(v);
            } else if (eq && !strcmp(cur->str, "mem-path")) {
                g_free(b->mem_path);
                b->mem_path = g_strdup(v);
            } else if (eq && !strcmp(cur->str, "share")) {
                b->share = is_on(v);
            } else if (eq && !strcmp(cur->str, "prealloc")) {
                b->prealloc = is_on(v);
            } else if (eq && !strcmp(cur->str, "pmem")) {
                b->pmem = is_on(v);
            }
        }
        first = false;
        g_string_truncate(cur, 0);
        if (!*p) {
            break;
        }
        p++;
    }
    g_string_free(cur, TRUE);
    if (!file || !b->id || !b->mem_path) {
        g_free(b->id);
        g_free(b->mem_path);
        memset(b, 0, sizeof(*b));
        return false;
    }
    return true;
}

/*
 * stat() or, with @open_it, open @b's mem-path as QEMU sees it (relative
 * to QEMU's working directory): the open read-only, without following a
 * final symlink, without blocking on a FIFO.  -1 with errno.
 */
static int at_mem_path(int dir, const Backend *b, bool open_it,
                       struct stat *st)
{
    int cwd = -1, fd = 0, e;

    if (b->mem_path[0] != '/') {
        cwd = openat(dir, "cwd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0) {
            return -1;
        }
    }
    if (open_it) {
        fd = openat(cwd >= 0 ? cwd : AT_FDCWD, b->mem_path,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    } else if (fstatat(cwd >= 0 ? cwd : AT_FDCWD, b->mem_path, st, 0) < 0) {
        fd = -1;
    }
    e = errno;
    if (cwd >= 0) {
        close(cwd);
    }
    errno = e;
    return fd;
}

/*
 * The very file QEMU maps at @m: /proc/PID/map_files gives the mapped
 * object itself (root only); else the mem-path, if it is that file.
 */
static int open_mapped(int dir, const Backend *b, const Mapping *m)
{
    char name[64];
    struct stat st;
    int fd;

    snprintf(name, sizeof(name), "map_files/%" PRIx64 "-%" PRIx64, m->start,
             m->first_end);
    fd = openat(dir, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fd = at_mem_path(dir, b, true, NULL);
    }
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) < 0 || m->ino != (uint64_t)st.st_ino ||
        m->dev_major != major(st.st_dev) || m->dev_minor != minor(st.st_dev)) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

static Mapping *mapping_of(GArray *maps, const struct stat *st)
{
    for (guint i = 0; i < maps->len; i++) {
        Mapping *m = &g_array_index(maps, Mapping, i);

        if (m->ino == (uint64_t)st->st_ino &&
            m->dev_major == major(st->st_dev) &&
            m->dev_minor == minor(st->st_dev)) {
            return m;
        }
    }
    return NULL;
}

/*
 * Add @b's RAM block to @pv: 0, or -1 with *@errp.  A backend without a
 * named regular file (a directory: QEMU made an unlinked file there) or
 * without share=on is not left in place by x-ignore-shared: the stream
 * carries it, nothing to bind.
 */
static int add_block(ParentVm *pv, int dir, GArray *maps, const Backend *b,
                     char **errp)
{
    struct stat st;
    Mapping *m;
    CprRamBlock *r;
    int fd;

    if (!b->share) {
        return 0;
    }
    if (at_mem_path(dir, b, false, &st) < 0) {
        *errp = g_strdup_printf("%s: cannot find the RAM file of memory "
                                "backend %s: %s", b->mem_path, b->id,
                                strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        /* Device DAX: no pread(); this helper maps no guest RAM. */
        fprintf(stderr, "cpr-pmem: warning: %s: RAM of memory backend %s is "
                "not a regular file: not recorded, not checked\n",
                b->mem_path, b->id);
        return 0;
    }
    m = mapping_of(maps, &st);
    if (!m || m->claimed) {
        *errp = g_strdup_printf("%s: QEMU (pid %d) does not map this file "
                                "as the RAM of memory backend %s (replaced "
                                "or recreated since QEMU started?)",
                                b->mem_path, (int)pv->pid, b->id);
        return -1;
    }
    fd = open_mapped(dir, b, m);
    if (fd < 0) {
        *errp = g_strdup_printf("%s: cannot open the RAM file of memory "
                                "backend %s: %s", b->mem_path, b->id,
                                strerror(errno));
        return -1;
    }
    m->claimed = true;
    pv->ram = g_renew(CprRamBlock, pv->ram, pv->nr_ram + 1);
    r = &pv->ram[pv->nr_ram++];
    *r = (CprRamBlock){
        .name = g_strdup(b->id), .host = NULL, .size = m->end - m->start,
        .fd = fd, .fd_offset = m->offset,
        .flags = CPR_RAM_SHARED | (b->prealloc ? CPR_RAM_PREALLOC : 0) |
                 (b->pmem ? CPR_RAM_PMEM : 0),
    };
    return 0;
}

static int describe_ram(ParentVm *pv, int dir, char **errp)
{
    GArray *maps = read_maps(dir);
    const char *a = pv->argv, *end = pv->argv + pv->argv_len;
    bool object = false;
    int ret = 0;

    if (!maps) {
        *errp = g_strdup_printf("cannot read /proc/%d/maps of QEMU: %s",
                                (int)pv->pid, strerror(errno));
        return -1;
    }
    for (; a < end && ret == 0; a += strlen(a) + 1) {
        Backend b;

        if (object && parse_backend(a, &b)) {
            ret = add_block(pv, dir, maps, &b, errp);
            g_free(b.id);
            g_free(b.mem_path);
        }
        object = !strcmp(a, "-object") || !strcmp(a, "--object");
    }
    mappings_free(maps);
    return ret;
}

int parent_vm_find(ParentVm *pv, char **errp)
{
    int dir;

    memset(pv, 0, sizeof(*pv));
    dir = find_qemu(pv);
    if (dir < 0) {
        return 0;
    }
    if (cpr_cmdline_read_at(dir, &pv->argv, &pv->argv_len) < 0 ||
        !pv->argv_len) {
        *errp = g_strdup_printf("cannot read the command line of QEMU (pid "
                                "%d): %s", (int)pv->pid, strerror(errno));
        goto fail;
    }
    if (describe_ram(pv, dir, errp) < 0) {
        goto fail;
    }
    if (parent_disks_find(dir, pv->argv, pv->argv_len, &pv->disks,
                          &pv->nr_disks) < 0) {
        *errp = g_strdup_printf("cannot read the descriptors of QEMU (pid "
                                "%d): %s", (int)pv->pid, strerror(errno));
        goto fail;
    }
    /* Ended meanwhile?  Reads under its directory fail once it has;
     * its exe link tells for certain. */
    {
        char *exe = read_link_at(dir, "exe");
        bool same = exe && !strcmp(exe, pv->exe);

        g_free(exe);
        if (!same) {
            *errp = g_strdup_printf("QEMU (pid %d) ended", (int)pv->pid);
            goto fail;
        }
    }
    close(dir);
    pv->qemu = cpr_vm_abi(pv->ram, pv->nr_ram, "", "", pv->disks,
                          pv->nr_disks);
    pv->vm = (CprVm){ &pv->qemu, pv->argv, pv->argv_len };
    return 1;
fail:
    close(dir);
    parent_vm_free(pv);
    return -1;
}

void parent_vm_free(ParentVm *pv)
{
    for (uint32_t i = 0; i < pv->nr_ram; i++) {
        g_free((char *)pv->ram[i].name);
        if (pv->ram[i].fd >= 0) {
            close(pv->ram[i].fd);
        }
    }
    g_free(pv->ram);
    parent_disks_free(pv->disks, pv->nr_disks);
    g_free(pv->exe);
    free(pv->argv);
    memset(pv, 0, sizeof(*pv));
}
