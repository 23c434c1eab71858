/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "binding.h"
#include "binding-internal.h"
#include "disk-binding.h"
#include "fingerprint.h"
#include "cmdline.h"
#include "errmsg.h"
#include "metadata.h"
#include "fault-guard.h"
#include "hash.h"
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* At most this many lines of a refusal (the rest is counted). */
#define MAX_LINES 32

static void human_size(uint64_t v, char *buf, size_t size)
{
    static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    int u = 0;

    while (v && v % 1024 == 0 && u < 6) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%" PRIu64 " %s", v, units[u]);
}

void cpr_lines_add(CprLines *l, const char *fmt, ...)
{
    char *s = NULL, **nv;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        s = NULL;
    }
    va_end(ap);
    nv = s ? realloc(l->v, (l->n + 1) * sizeof(*nv)) : NULL;
    if (!nv) {
        free(s);
        l->oom = true;
        return;
    }
    l->v = nv;
    l->v[l->n++] = s;
}

void cpr_lines_free(CprLines *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
}

/* "@lines[0]\n@lines[1]..." (at most MAX_LINES, then a count). */
static char *join(char **v, size_t n)
{
    size_t len = 64;
    char *s, *p;

    for (size_t i = 0; i < n && i < MAX_LINES; i++) {
        len += strlen(v[i]) + 1;
    }
    s = malloc(len);
    if (!s) {
        return NULL;
    }
    p = s;
    *p = 0;
    for (size_t i = 0; i < n && i < MAX_LINES; i++) {
        p += sprintf(p, "%s%s", i ? "\n" : "", v[i]);
    }
    if (n > MAX_LINES) {
        sprintf(p, "\n... and %zu more", n - MAX_LINES);
    }
    return s;
}

/* Which refusals CPR_PMEM_ALLOW overrides. */
enum { ALLOW_CMDLINE = 1, ALLOW_RAM = 2, ALLOW_DISK = 4 };

static unsigned parse_allow(const CprHost *host)
{
    const char *env = getenv(CPR_ALLOW_ENV);
    unsigned allow = 0;
    char *copy, *tok, *save = NULL;

    if (!env || !*env || !(copy = strdup(env))) {
        return 0;
    }
    for (tok = strtok_r(copy, ", \t", &save); tok;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (!strcmp(tok, "cmdline")) {
            allow |= ALLOW_CMDLINE;
        } else if (!strcmp(tok, "ram")) {
            allow |= ALLOW_RAM;
        } else if (!strcmp(tok, "disk")) {
            allow |= ALLOW_DISK;
        } else {
            cpr_warn(host, CPR_ALLOW_ENV ": ignoring unknown item '%s' "
                     "(known: cmdline, ram, disk)", tok);
        }
    }
    free(copy);
    return allow;
}

static const CprRamBlock *find_ram(const CprVm *vm, const char *name)
{
    for (uint32_t i = 0; i < cpr_vm_nr_ram(vm); i++) {
        const CprRamBlock *b = cpr_vm_ram(vm, i);

        if (b->name && !strcmp(b->name, name)) {
            return b;
        }
    }
    return NULL;
}

static const CprVmdescBlock *find_saved(const CprVmdesc *d, const char *name)
{
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        if (!strcmp(d->blocks[i].name, name)) {
            return &d->blocks[i];
        }
    }
    return NULL;
}

/*
 * Where a RAM block's lines say it is: its file's path, read from /proc
 * only when a line needs it (a restore that passes needs none).
 */
typedef struct Where {
    int fd;
    bool read;
    char *path;                 /* cpr_fd_path(), or NULL */
    char anon[CPR_VMDESC_MAX_NAME + 64];
} Where;

static const char *where_path(Where *w)
{
    if (!w->read) {
        w->path = w->fd >= 0 ? cpr_fd_path(w->fd) : NULL;
        w->read = true;
    }
    return w->path ? w->path : "";
}

static const char *where_of(Where *w)
{
    const char *path = where_path(w);

    return *path ? path : w->anon;
}

/*
 * The XXH3 of the sampled pages @index of @b, and (if @zero) whether each
 * is all zero: 0, -1 if unreadable, -2 if not mapped.
 */
static int hash_samples(const CprRamBlock *b, bool device, uint64_t seed,
                        const uint64_t *index, uint32_t n, uint64_t *xxh3,
                        bool *zero)
{
    int ret = -2;

    /*
     * A file QEMU maps shared holds what the mapping shows: read it with
     * pread (a restore after a reboot starts with a cold page cache, and
     * a fault would read the device's whole readahead window per page).
     * Not a device: what read() gives need not be what mmap() shows.
     */
    if (b->fd >= 0 && (b->flags & CPR_RAM_SHARED) && !device) {
        ret = cpr_fingerprint_hash_fd(b->fd, b->fd_offset, b->size, seed,
                                      index, n, xxh3, zero);
    }
    if (ret == -2 && b->host) {
        ret = cpr_fingerprint_hash(b->host, b->size, seed, index, n, xxh3,
                                   zero);
    }
    return ret;
}

/* How many of the hashes of @k's samples differ from @xxh3. */
static uint32_t nr_differ(const CprVmdescBlock *k, const uint64_t *xxh3)
{
    uint32_t differ = 0;

    for (uint32_t i = 0; i < k->nr_samples; i++) {
        differ += xxh3[i] != k->samples[i].xxh3;
    }
    return differ;
}

/* The sampled pages of @b against the saved ones of @k.  Which pages are
 * zeros is looked at only to word a refusal (a second read). */
static void check_samples(CprLines *l, Where *w,
                          const CprVmdescBlock *k, const CprRamBlock *b,
                          uint64_t seed, bool device)
{
    uint64_t index[CPR_VMDESC_MAX_SAMPLES], xxh3[CPR_VMDESC_MAX_SAMPLES];
    bool zero[CPR_VMDESC_MAX_SAMPLES];
    uint32_t differ = 0, zeros = 0;
    int ret;

    if (!k->nr_samples) {
        return;
    }
    for (uint32_t i = 0; i < k->nr_samples; i++) {
        index[i] = k->samples[i].index;
    }
    ret = hash_samples(b, device, seed, index, k->nr_samples, xxh3, NULL);
    if (ret == 0 && nr_differ(k, xxh3)) {
        ret = hash_samples(b, device, seed, index, k->nr_samples, xxh3,
                           zero);
    }
    if (ret == -2) {
        cpr_lines_add(l, "%s: RAM block %s is not mapped", where_of(w),
                      k->name);
        return;
    }
    if (ret < 0) {
        cpr_lines_add(l,
            "%s: cannot read the guest RAM of block %s (its file was "
            "truncated?)", where_of(w), k->name);
        return;
    }
    for (uint32_t i = 0; i < k->nr_samples; i++) {
        if (xxh3[i] != k->samples[i].xxh3) {
            differ++;
            zeros += zero[i];
        }
    }
    if (differ && zeros == differ) {
        cpr_lines_add(l,
            "%s: %u of %u sampled pages differ from the saved VM and "
            "are all zero: %s", where_of(w), differ, k->nr_samples,
            device ? "the device looks wiped (DRAM-backed pmem after a cold "
                     "reboot, or a namespace made anew)"
                   : "the RAM looks newly created (a tmpfs does not survive "
                     "a reboot)");
    } else if (differ) {
        cpr_lines_add(l,
            "%s: %u of %u sampled pages differ from the saved VM (stale "
            "or foreign guest RAM)", where_of(w), differ, k->nr_samples);
    }
}

static void check_block(CprLines *l, const CprVmdescBlock *k,
                        const CprRamBlock *b, uint64_t seed)
{
    Where w = { .fd = b->fd };
    char a[40], c[40];
    struct stat st;
    int64_t birth_sec;
    uint32_t birth_nsec;
    bool other = false, device = false;

    snprintf(w.anon, sizeof(w.anon), "RAM block %s (anonymous memory)",
             k->name);
    if (b->size != k->size) {
        human_size(b->size, a, sizeof(a));
        human_size(k->size, c, sizeof(c));
        cpr_lines_add(l,
            "%s: RAM block %s is %s, the saved VM's was %s (resized?)",
            where_of(&w), k->name, a, c);
        goto out;
    }
    if ((b->fd >= 0) != k->has_file) {
        cpr_lines_add(l, "%s: RAM block %s is %s, the saved VM's was %s",
            where_of(&w),
            k->name, b->fd >= 0 ? "a file" : "anonymous memory",
            k->has_file ? k->file.path : "anonymous memory");
        goto out;
    }
    if (k->has_file) {
        if (cpr_ram_fstat(b->fd, &st) < 0) {
            cpr_lines_add(l, "%s: cannot stat: %s", where_of(&w),
                          strerror(errno));
            goto out;
        }
        device = S_ISCHR(st.st_mode);
        /*
         * Device numbers can change across a reboot; inode numbers not.
         * An inode number can be reused by a new file, whose birth time
         * (where kept) tells it apart.  A device DAX node is its device
         * number (cpr_ram_fstat), and a kexec can renumber it (its minor
         * comes from a pool shared with the fs-dax devices, taken in probe
         * order): at the same path, the sampled pages decide.
         */
        if ((uint64_t)st.st_ino != k->file.ino ||
            ((uint64_t)st.st_dev != k->file.dev &&
             strcmp(where_path(&w), k->file.path))) {
            cpr_lines_add(l,
                "%s: not the file the VM was saved with (that was %s, "
                "inode %" PRIu64 " on device %u:%u; this is inode %" PRIu64
                " on device %u:%u)", where_of(&w), k->file.path, k->file.ino,
                major(k->file.dev), minor(k->file.dev), (uint64_t)st.st_ino,
                major(st.st_dev), minor(st.st_dev));
            other = true;
        } else if (k->file.has_birth &&
                   cpr_file_birth(b->fd, &birth_sec, &birth_nsec) &&
                   (birth_sec != k->file.birth_sec ||
                    birth_nsec != k->file.birth_nsec)) {
            cpr_format_utc(birth_sec, birth_nsec, a, sizeof(a));
            cpr_format_utc(k->file.birth_sec, k->file.birth_nsec, c,
                         sizeof(c));
            cpr_lines_add(l,
                "%s: not the file the VM was saved with (a file created "
                "at %s, with the inode number of the one created at %s)",
                where_of(&w), a, c);
            other = true;
        }
        if (b->fd_offset != k->fd_offset) {
            cpr_lines_add(l,
                "%s: RAM block %s starts at offset %" PRIu64 " of the "
                "file, the saved VM's at %" PRIu64, where_of(&w), k->name,
                b->fd_offset, k->fd_offset);
            goto out;
        }
        if (!device && (b->fd_offset > (uint64_t)st.st_size ||
                        b->size > (uint64_t)st.st_size - b->fd_offset)) {
            cpr_lines_add(l,
                "%s: the file (%" PRIu64 " bytes) is shorter than RAM "
                "block %s (%" PRIu64 " bytes at offset %" PRIu64 "): "
                "truncated?", where_of(&w), (uint64_t)st.st_size, k->name,
                b->size, b->fd_offset);
            goto out;
        }
        /* QEMU's prealloc writes every page, which sets the mtime. */
        if (!other && !(b->flags & CPR_RAM_PREALLOC) &&
            ((int64_t)st.st_mtim.tv_sec != k->file.mtime_sec ||
             (uint32_t)st.st_mtim.tv_nsec != k->file.mtime_nsec)) {
            cpr_format_utc(st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, a,
                         sizeof(a));
            cpr_format_utc(k->file.mtime_sec, k->file.mtime_nsec, c,
                         sizeof(c));
            cpr_lines_add(l,
                "%s: modified since the save (at %s; saved at %s): a "
                "stale copy, or written by another process", where_of(&w),
                a, c);
        }
    }
    check_samples(l, &w, k, b, seed, device);
out:
    free(w.path);
}

static void check_ram(CprLines *l, const CprVmdesc *d, const CprVm *vm)
{
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];
        const CprRamBlock *b = find_ram(vm, k->name);

        if (b) {
            check_block(l, k, b, d->seed);
        } else if (cpr_block_where(k)) {
            cpr_lines_add(l,
                "%s: RAM block %s of the saved VM is missing on the "
                "destination", cpr_block_where(k), k->name);
        } else {
            cpr_lines_add(l, "RAM block %s of the saved VM is missing on the "
                "destination", k->name);
        }
    }
    for (uint32_t i = 0; i < cpr_vm_nr_ram(vm); i++) {
        const CprRamBlock *b = cpr_vm_ram(vm, i);
        char *path;

        if (b->name && find_saved(d, b->name)) {
            continue;
        }
        path = b->fd >= 0 ? cpr_fd_path(b->fd) : NULL;
        cpr_lines_add(l,
            "%s%sRAM block %s is not in the saved VM", path ? path : "",
            path ? ": " : "", b->name ? b->name : "(unnamed)");
        free(path);
    }
}

static char *refusal(const char *image_path, CprLines *ram, bool ram_refused,
                     CprLines *disk, bool disk_refused,
                     CprCmdlineDiff *diff, bool cmd_refused)
{
    char *r = NULL, *c = NULL, *msg = NULL, *k = NULL, *rk = NULL;

    if (ram_refused && !(r = join(ram->v, ram->n))) {
        return NULL;
    }
    /* Disk lines read like RAM lines, with their own override. */
    if (disk_refused && !(k = join(disk->v, disk->n))) {
        free(r);
        return NULL;
    }
    if (cmd_refused && !(c = join(diff->lines, diff->nr))) {
        free(r);
        free(k);
        return NULL;
    }
    if (k) {
        /* "RAM...; refusing ... (=ram overrides)\nDISK...; refusing ..." */
        if (asprintf(&rk, "%s%s%s%s%s%s; refusing to resume from %s ("
                     CPR_ALLOW_ENV "=disk overrides)",
                     r ? r : "", r ? "; refusing to resume from " : "",
                     r ? image_path : "",
                     r ? " (" CPR_ALLOW_ENV "=ram overrides)" : "",
                     r ? "\n" : "", k, image_path) < 0) {
            rk = NULL;
        }
        free(k);
        free(r);
        if (!rk) {
            return NULL;
        }
        if (asprintf(&msg, "%s%s%s%s%s", rk, c ? "\n" : "",
                     c ? image_path : "",
                     c ? ": the command line differs from the saved VM's; "
                         "refusing to resume (" CPR_ALLOW_ENV "=cmdline "
                         "overrides):\n" : "",
                     c ? c : "") < 0) {
            msg = NULL;
        }
        free(rk);
        free(c);
        return msg;
    }
    if (asprintf(&msg, "%s%s%s%s%s%s%s%s",
                 r ? r : "", r ? "; refusing to resume from " : "",
                 r ? image_path : "",
                 r ? " (" CPR_ALLOW_ENV "=ram overrides)" : "",
                 r && c ? "\n" : "", c ? image_path : "",
                 c ? ": the command line differs from the saved VM's; "
                     "refusing to resume (" CPR_ALLOW_ENV "=cmdline "
                     "overrides):\n" : "",
                 c ? c : "") < 0) {
        msg = NULL;
    }
    free(r);
    free(c);
    return msg;
}

int cpr_binding_verify(const char *image_path, const CprRecord *rec,
                       const CprVmdesc *d, const CprHost *host,
                       const CprVm *vm, char **errp)
{
    CprCmdlineDiff diff = { 0 };
    CprLines ram = { 0 }, disk = { 0 };
    char *args = NULL, *msg;
    size_t args_len = 0;
    struct utsname u;
    unsigned allow;
    bool ram_refused, disk_refused, cmd_refused;
    int ret = -1;

    if (!d) {
        cpr_warn(host, "%s: image (generation %" PRIu64 ") was saved by an "
                 "older pmem transport (record format %u) that did not "
                 "record the VM: its guest RAM and command line are not "
                 "verified", image_path, rec->generation, rec->version);
        return 0;
    }
    allow = parse_allow(host);
    check_ram(&ram, d, vm);
    cpr_disk_check(&disk, d, vm, host);
    if (vm && vm->argv) {
        args = malloc(vm->argv_len ? vm->argv_len : 1);
        if (args) {
            memcpy(args, vm->argv, vm->argv_len);
            args_len = vm->argv_len;
        }
    } else {
        cpr_cmdline_own(&args, &args_len);
    }
    if (ram.oom || disk.oom ||
        cpr_cmdline_diff(d->argv, d->argv_len, d->machine, d->cpu,
                         args ? args : "", args_len,
                         cpr_vm_machine(vm), cpr_vm_cpu(vm), &diff) < 0) {
        cpr_error(errp, image_path, "out of memory");
        goto out;
    }
    ram_refused = ram.n && !(allow & ALLOW_RAM);
    disk_refused = disk.n && !(allow & ALLOW_DISK);
    cmd_refused = diff.nr && !(allow & ALLOW_CMDLINE);
    if (ram_refused || disk_refused || cmd_refused) {
        msg = refusal(image_path, &ram, ram_refused, &disk, disk_refused,
                      &diff, cmd_refused);
        if (!msg) {
            cpr_error(errp, image_path, "out of memory");
        } else if (!*errp) {
            *errp = msg;
        } else {
            free(msg);
        }
        goto out;
    }
    for (size_t i = 0; i < ram.n; i++) {
        cpr_warn(host, CPR_ALLOW_ENV "=ram: resuming %s although %s",
                 image_path, ram.v[i]);
    }
    for (size_t i = 0; i < disk.n; i++) {
        cpr_warn(host, CPR_ALLOW_ENV "=disk: resuming %s although %s",
                 image_path, disk.v[i]);
    }
    for (size_t i = 0; i < diff.nr; i++) {
        cpr_warn(host, CPR_ALLOW_ENV "=cmdline: resuming %s although the "
                 "command line differs: %s", image_path, diff.lines[i]);
    }
    if (uname(&u) < 0) {
        u.release[0] = 0;
    }
    if (strcmp(d->qemu_version, host && host->qemu_version ?
               host->qemu_version : "") ||
        strcmp(d->kernel_release, u.release)) {
        cpr_warn(host, "restoring a VM saved by QEMU %s on Linux %s into "
                 "QEMU %s on Linux %s", d->qemu_version, d->kernel_release,
                 host && host->qemu_version ? host->qemu_version : "?",
                 u.release);
    }
    ret = 0;
out:
    free(args);
    cpr_lines_free(&ram);
    cpr_lines_free(&disk);
    cpr_cmdline_diff_free(&diff);
    return ret;
}
