/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "binding.h"
#include "cmdline.h"
#include "errmsg.h"
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

void cpr_warn(const CprHost *host, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;

    if (!host || !host->warn) {
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) {
        msg = NULL;
    }
    va_end(ap);
    host->warn(host->opaque, msg ? msg : "pmem transport: out of memory");
    free(msg);
}

static char *xstrdup(const char *s, bool *oom)
{
    char *d = strdup(s ? s : "");

    if (!d) {
        *oom = true;
    }
    return d;
}

/* readlink of /proc/self/fd/@fd, "" if that fails; malloc()ed. */
static char *fd_path(int fd)
{
    char proc[64], buf[CPR_VMDESC_MAX_STR];
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, buf, sizeof(buf) - 1);
    if (n < 0) {
        n = 0;
    }
    buf[n] = 0;
    return strdup(buf);
}

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

static void format_mtime(int64_t sec, uint32_t nsec, char *buf, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;
    size_t n;

    if (!gmtime_r(&t, &tm) ||
        !(n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))) {
        snprintf(buf, size, "%" PRId64 " s", sec);
        return;
    }
    snprintf(buf + n, size - n, ".%09u UTC", nsec);
}

/* ---- the fingerprint ---------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

uint32_t cpr_fingerprint_pages(uint64_t seed, const char *name,
                               uint64_t size, uint64_t *index)
{
    uint64_t pages = cpr_vmdesc_pages(size);
    uint32_t n = cpr_vmdesc_nr_samples(size), got = 2;
    uint64_t x = XXH3_64bits_withSeed(name, strlen(name), seed);

    if (pages <= CPR_VMDESC_MAX_SAMPLES) {
        for (uint32_t i = 0; i < n; i++) {
            index[i] = i;
        }
        return n;
    }
    index[0] = 0;
    index[1] = pages - 1;
    /* Distinct pages in [1, pages - 2]: there are more than 62 of them. */
    while (got < n) {
        uint64_t k = 1 + splitmix64(&x) % (pages - 2);
        uint32_t i;

        for (i = 0; i < got && index[i] != k; i++) {
        }
        if (i == got) {
            index[got++] = k;
        }
    }
    qsort(index, n, sizeof(*index), cmp_u64);
    return n;
}

/* The length of page @index of a block of @size bytes. */
static size_t page_len(uint64_t size, uint64_t index)
{
    uint64_t off = index * CPR_VMDESC_PAGE;

    return size - off < CPR_VMDESC_PAGE ? (size_t)(size - off) :
           CPR_VMDESC_PAGE;
}

typedef struct Hashing {
    const uint8_t *host;
    uint64_t size, seed;
    const uint64_t *index;
    uint32_t n;
    uint64_t *xxh3;
    bool *zero;
} Hashing;

static bool all_zero(const uint8_t *p, size_t len)
{
    static const uint8_t zeros[256];

    while (len >= sizeof(zeros)) {
        if (memcmp(p, zeros, sizeof(zeros))) {
            return false;
        }
        p += sizeof(zeros);
        len -= sizeof(zeros);
    }
    return memcmp(p, zeros, len) == 0;
}

static void do_hash(void *opaque)
{
    Hashing *h = opaque;

    for (uint32_t i = 0; i < h->n; i++) {
        uint64_t off = h->index[i] * CPR_VMDESC_PAGE;
        size_t len = page_len(h->size, h->index[i]);

        h->xxh3[i] = XXH3_64bits_withSeed(h->host + off, len, h->seed);
        if (h->zero) {
            h->zero[i] = all_zero(h->host + off, len);
        }
    }
}

int cpr_fingerprint_hash(const void *host, uint64_t size, uint64_t seed,
                         const uint64_t *index, uint32_t n, uint64_t *xxh3,
                         bool *zero)
{
    Hashing h = { host, size, seed, index, n, xxh3, zero };

    for (uint32_t i = 0; i < n; i++) {
        if (index[i] >= cpr_vmdesc_pages(size)) {
            return -1;
        }
    }
    if (n == 0) {
        return 0;
    }
    return cpr_fault_guard(host, (size_t)size, do_hash, &h);
}

int cpr_fingerprint_hash_fd(int fd, uint64_t fd_offset, uint64_t size,
                            uint64_t seed, const uint64_t *index, uint32_t n,
                            uint64_t *xxh3, bool *zero)
{
    uint8_t page[CPR_VMDESC_PAGE];

    for (uint32_t i = 0; i < n; i++) {
        size_t len, done = 0;

        if (index[i] >= cpr_vmdesc_pages(size)) {
            return -1;
        }
        len = page_len(size, index[i]);
        while (done < len) {
            ssize_t got = pread(fd, page + done, len - done,
                                (off_t)(fd_offset + index[i] *
                                        CPR_VMDESC_PAGE + done));

            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                /* Not a file read() serves (device DAX): map instead. */
                return errno == EINVAL || errno == ENODEV ||
                       errno == ESPIPE || errno == EISDIR ? -2 : -1;
            }
            if (got == 0) {
                return -1;      /* past the end of the file: truncated */
            }
            done += (size_t)got;
        }
        xxh3[i] = XXH3_64bits_withSeed(page, len, seed);
        if (zero) {
            zero[i] = all_zero(page, len);
        }
    }
    return 0;
}

/* ---- save --------------------------------------------------------------- */

static const char *block_where(const CprVmdescBlock *k)
{
    return k->has_file && k->file.path && *k->file.path ? k->file.path :
           NULL;
}

/* The file's birth time, if its filesystem keeps one. */
static bool birth_time(int fd, int64_t *sec, uint32_t *nsec)
{
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) < 0 ||
        !(stx.stx_mask & STATX_BTIME)) {
        return false;
    }
    *sec = stx.stx_btime.tv_sec;
    *nsec = stx.stx_btime.tv_nsec;
    return true;
}

/* Identity and class of block @b into @k (name and the rest too). */
static int describe_block(CprVmdescBlock *k, const CprRamBlock *b,
                          const char *image_path, char **errp)
{
    char detail[CPR_VMDESC_MAX_DETAIL];
    bool oom = false;
    struct stat st;

    memset(k, 0, sizeof(*k));
    if (!b->name || !*b->name || strlen(b->name) > CPR_VMDESC_MAX_NAME) {
        cpr_error(errp, image_path, "RAM block with %s name",
                  b->name && *b->name ? "too long a" : "no");
        return -1;
    }
    k->name = xstrdup(b->name, &oom);
    k->size = b->size;
    k->flags = b->flags & CPR_RAM_FLAGS_KNOWN;
    k->fd_offset = b->fd_offset;
    k->media = cpr_media_of_ram(b->fd, b->flags & CPR_RAM_PMEM, detail,
                                sizeof(detail));
    k->media_detail = xstrdup(detail, &oom);
    if (b->fd >= 0) {
        if (fstat(b->fd, &st) < 0) {
            cpr_error_errno(errp, image_path, errno, "cannot stat the file "
                            "of RAM block %s", b->name);
            return -1;
        }
        k->has_file = true;
        k->file.dev = (uint64_t)st.st_dev;
        k->file.ino = (uint64_t)st.st_ino;
        k->file.has_birth = birth_time(b->fd, &k->file.birth_sec,
                                       &k->file.birth_nsec);
        if (!(k->file.path = fd_path(b->fd))) {
            oom = true;
        }
    }
    if (oom) {
        cpr_error(errp, image_path, "out of memory");
        return -1;
    }
    return 0;
}

static void free_block(CprVmdescBlock *k)
{
    free(k->name);
    free(k->media_detail);
    free(k->file.path);
    memset(k, 0, sizeof(*k));
}

static void warn_volatile(const CprHost *host, const CprVmdesc *d,
                          const char *image_path)
{
    if (d->image_media == CPR_MEDIA_VOLATILE) {
        cpr_warn(host, "%s: the image is on volatile memory (%s): a host "
                 "reboot loses it", image_path, d->image_media_detail);
    }
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];

        if (k->media != CPR_MEDIA_VOLATILE) {
            continue;
        }
        if (block_where(k)) {
            cpr_warn(host, "%s: the guest RAM of block %s is on volatile "
                     "memory (%s): a host reboot loses it", block_where(k),
                     k->name, k->media_detail);
        } else {
            cpr_warn(host, "RAM block %s is on volatile memory (%s): a host "
                     "reboot loses it", k->name, k->media_detail);
        }
    }
}

typedef struct Touch {
    const volatile uint8_t *host;
    const uint64_t *index;
    uint32_t n;
} Touch;

static void do_touch(void *opaque)
{
    Touch *t = opaque;

    for (uint32_t i = 0; i < t->n; i++) {
        (void)t->host[t->index[i] * CPR_VMDESC_PAGE];
    }
}

/*
 * The seed, so the pages the commit will sample, are known now: map them
 * in while the VM runs, so that the commit, in the pause, finds them
 * mapped even where the guest never touched them (a fault costs µs; on a
 * fresh page table, tens of µs).  Best effort: a page that is gone is
 * the commit's error to report.
 */
static void prefault(const CprVmdesc *d, const CprVm *vm)
{
    for (uint32_t i = 0; vm && i < vm->nr_ram && i < d->nr_blocks; i++) {
        const CprRamBlock *b = &vm->ram[i];
        uint64_t index[CPR_VMDESC_MAX_SAMPLES];
        Touch t = { b->host, index, 0 };

        if (!b->host || !b->size) {
            continue;
        }
        t.n = cpr_fingerprint_pages(d->seed, d->blocks[i].name, b->size,
                                    index);
        /*
         * A page of a file not in the page cache: read() reads ahead a
         * few pages, a fault on a mapping the device's whole readahead
         * window (8 MiB here: half a GiB for 64 pages of a sparse file).
         */
        if (b->fd >= 0 && (b->flags & CPR_RAM_SHARED)) {
            uint64_t h[CPR_VMDESC_MAX_SAMPLES];

            (void)cpr_fingerprint_hash_fd(b->fd, b->fd_offset, b->size, 0,
                                          index, t.n, h, NULL);
        }
        (void)cpr_fault_guard(b->host, (size_t)b->size, do_touch, &t);
    }
}

CprVmdesc *cpr_binding_open(const CprHost *host, const CprMetadata *md,
                            const CprVm *vm, int image_fd,
                            const char *image_path, char **errp)
{
    CprVmdesc *d = calloc(1, sizeof(*d));
    char detail[CPR_VMDESC_MAX_DETAIL];
    bool oom = !d;

    if (oom) {
        cpr_error(errp, image_path, "out of memory");
        return NULL;
    }
    d->version = CPR_VMDESC_VERSION;
    if (getrandom(&d->seed, sizeof(d->seed), 0) != sizeof(d->seed)) {
        cpr_error_errno(errp, image_path, errno, "cannot get random bytes");
        goto fail;
    }
    d->qemu_version = xstrdup(md->qemu_version, &oom);
    d->kernel_release = xstrdup(md->kernel_release, &oom);
    d->machine = xstrdup(vm && vm->machine ? vm->machine : "", &oom);
    d->cpu = xstrdup(vm && vm->cpu ? vm->cpu : "", &oom);
    d->argv_len = md->argv ? md->argv_len : 0;
    d->argv = malloc(d->argv_len + 1);
    if (d->argv) {
        memcpy(d->argv, md->argv ? md->argv : "", d->argv_len);
    } else {
        oom = true;
    }
    d->image_media = cpr_media_of_file(image_fd, detail, sizeof(detail));
    d->image_media_detail = xstrdup(detail, &oom);
    if (oom) {
        cpr_error(errp, image_path, "out of memory");
        goto fail;
    }
    if (strlen(d->machine) > 255 || strlen(d->cpu) > 255) {
        cpr_error(errp, image_path, "machine type or CPU model name too "
                  "long");
        goto fail;
    }
    if (vm && vm->nr_ram) {
        if (vm->nr_ram > CPR_VMDESC_MAX_BLOCKS) {
            cpr_error(errp, image_path, "too many RAM blocks (%u)",
                      vm->nr_ram);
            goto fail;
        }
        d->blocks = calloc(vm->nr_ram, sizeof(*d->blocks));
        if (!d->blocks) {
            cpr_error(errp, image_path, "out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < vm->nr_ram; i++) {
            d->nr_blocks = i + 1;
            if (describe_block(&d->blocks[i], &vm->ram[i], image_path,
                               errp) < 0) {
                goto fail;
            }
            for (uint32_t j = 0; j < i; j++) {
                if (!strcmp(d->blocks[j].name, d->blocks[i].name)) {
                    cpr_error(errp, image_path, "two RAM blocks named %s",
                              d->blocks[i].name);
                    goto fail;
                }
            }
        }
    }
    prefault(d, vm);
    warn_volatile(host, d, image_path);
    return d;
fail:
    cpr_vmdesc_free(d);
    return NULL;
}

/* Block @k, as described at open, is still block @b's file. */
static bool same_as_open(const CprVmdescBlock *k, const CprRamBlock *b,
                         const struct stat *st)
{
    return !strcmp(k->name, b->name) && (k->has_file == (b->fd >= 0)) &&
           (!k->has_file || (k->file.dev == (uint64_t)st->st_dev &&
                             k->file.ino == (uint64_t)st->st_ino)) &&
           k->flags == (b->flags & CPR_RAM_FLAGS_KNOWN);
}

static int commit_block(CprVmdescBlock *k, const CprRamBlock *b,
                        uint64_t seed, const char *image_path, char **errp)
{
    const char *where = block_where(k);
    struct stat st;

    if (k->has_file) {
        if (fstat(b->fd, &st) < 0) {
            cpr_error_errno(errp, where, errno, "cannot stat the file of RAM "
                            "block %s", k->name);
            return -1;
        }
        k->file.size = (uint64_t)st.st_size;
        k->file.mtime_sec = (int64_t)st.st_mtim.tv_sec;
        k->file.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
        k->file.nlink = (uint32_t)st.st_nlink;
        if (b->fd_offset > (uint64_t)st.st_size ||
            b->size > (uint64_t)st.st_size - b->fd_offset) {
            cpr_error(errp, where, "file of RAM block %s is shorter (%" PRIu64
                      " bytes) than the block (%" PRIu64 " bytes at offset %"
                      PRIu64 "): truncated?", k->name, (uint64_t)st.st_size,
                      b->size, b->fd_offset);
            return -1;
        }
    }
    if (b->size && !b->host) {
        cpr_error(errp, image_path, "RAM block %s is not mapped", k->name);
        return -1;
    }
    {
        uint64_t index[CPR_VMDESC_MAX_SAMPLES], xxh3[CPR_VMDESC_MAX_SAMPLES];
        uint32_t n = cpr_fingerprint_pages(seed, k->name, b->size, index);

        if (cpr_fingerprint_hash(b->host, b->size, seed, index, n, xxh3,
                                 NULL) < 0) {
            cpr_error(where ? errp : errp, where ? where : image_path,
                      "cannot read the guest RAM of block %s (its file was "
                      "truncated?)", k->name);
            return -1;
        }
        k->nr_samples = n;
        for (uint32_t i = 0; i < n; i++) {
            k->samples[i].index = index[i];
            k->samples[i].xxh3 = xxh3[i];
        }
    }
    return 0;
}

int cpr_binding_commit(CprVmdesc *d, const CprVm *vm,
                       const char *image_path, char **errp)
{
    uint32_t nr = vm ? vm->nr_ram : 0;
    CprVmdescBlock *blocks = NULL;
    int ret = -1;

    if (nr > CPR_VMDESC_MAX_BLOCKS) {
        cpr_error(errp, image_path, "too many RAM blocks (%u)", nr);
        return -1;
    }
    if (nr && !(blocks = calloc(nr, sizeof(*blocks)))) {
        cpr_error(errp, image_path, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < nr; i++) {
        const CprRamBlock *b = &vm->ram[i];
        struct stat st = { 0 };
        CprVmdescBlock *open_k = NULL;

        if (b->fd >= 0 && fstat(b->fd, &st) < 0) {
            cpr_error_errno(errp, image_path, errno, "cannot stat the file "
                            "of RAM block %s", b->name ? b->name : "");
            goto out;
        }
        /* Normally the very blocks out_open saw: reuse their identity. */
        for (uint32_t j = 0; j < d->nr_blocks && b->name; j++) {
            if (d->blocks[j].name && same_as_open(&d->blocks[j], b, &st)) {
                open_k = &d->blocks[j];
            }
        }
        if (open_k) {
            blocks[i] = *open_k;
            memset(open_k, 0, sizeof(*open_k));
            blocks[i].size = b->size;
            blocks[i].fd_offset = b->fd_offset;
        } else if (describe_block(&blocks[i], b, image_path, errp) < 0) {
            goto out;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (!strcmp(blocks[j].name, blocks[i].name)) {
                cpr_error(errp, image_path, "two RAM blocks named %s",
                          blocks[i].name);
                goto out;
            }
        }
        if (commit_block(&blocks[i], b, d->seed, image_path, errp) < 0) {
            goto out;
        }
    }
    ret = 0;
out:
    /* The open-time blocks are replaced by the commit's either way. */
    for (uint32_t j = 0; j < d->nr_blocks; j++) {
        free_block(&d->blocks[j]);
    }
    free(d->blocks);
    d->blocks = blocks;
    d->nr_blocks = nr;
    if (ret < 0) {
        for (uint32_t j = 0; j < nr; j++) {
            free_block(&blocks[j]);
        }
        free(blocks);
        d->blocks = NULL;
        d->nr_blocks = 0;
    }
    return ret;
}

/* ---- restore ------------------------------------------------------------ */

typedef struct Lines {
    char **v;
    size_t n;
    bool oom;
} Lines;

static void add(Lines *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(Lines *l, const char *fmt, ...)
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

static void lines_free(Lines *l)
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
enum { ALLOW_CMDLINE = 1, ALLOW_RAM = 2 };

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
        } else {
            cpr_warn(host, CPR_ALLOW_ENV ": ignoring unknown item '%s' "
                     "(known: cmdline, ram)", tok);
        }
    }
    free(copy);
    return allow;
}

static const CprRamBlock *find_ram(const CprVm *vm, const char *name)
{
    for (uint32_t i = 0; vm && i < vm->nr_ram; i++) {
        if (vm->ram[i].name && !strcmp(vm->ram[i].name, name)) {
            return &vm->ram[i];
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

/* The sampled pages of @b against the saved ones of @k. */
static void check_samples(Lines *l, const char *where,
                          const CprVmdescBlock *k, const CprRamBlock *b,
                          uint64_t seed)
{
    uint64_t index[CPR_VMDESC_MAX_SAMPLES], xxh3[CPR_VMDESC_MAX_SAMPLES];
    bool zero[CPR_VMDESC_MAX_SAMPLES];
    uint32_t differ = 0, zeros = 0;

    int ret = -2;

    if (!k->nr_samples) {
        return;
    }
    for (uint32_t i = 0; i < k->nr_samples; i++) {
        index[i] = k->samples[i].index;
    }
    /*
     * A file QEMU maps shared holds what the mapping shows: read it with
     * pread (a restore after a reboot starts with a cold page cache, and
     * a fault would read the device's whole readahead window per page).
     */
    if (b->fd >= 0 && (b->flags & CPR_RAM_SHARED)) {
        ret = cpr_fingerprint_hash_fd(b->fd, b->fd_offset, b->size, seed,
                                      index, k->nr_samples, xxh3, zero);
    }
    if (ret == -2 && !b->host) {
        add(l, "%s: RAM block %s is not mapped", where, k->name);
        return;
    }
    if (ret == -2) {
        ret = cpr_fingerprint_hash(b->host, b->size, seed, index,
                                   k->nr_samples, xxh3, zero);
    }
    if (ret < 0) {
        add(l, "%s: cannot read the guest RAM of block %s (its file was "
            "truncated?)", where, k->name);
        return;
    }
    for (uint32_t i = 0; i < k->nr_samples; i++) {
        if (xxh3[i] != k->samples[i].xxh3) {
            differ++;
            zeros += zero[i];
        }
    }
    if (differ && zeros == differ) {
        add(l, "%s: %u of %u sampled pages differ from the saved VM and "
            "are all zero: the RAM looks newly created (a tmpfs does not "
            "survive a reboot)", where, differ, k->nr_samples);
    } else if (differ) {
        add(l, "%s: %u of %u sampled pages differ from the saved VM (stale "
            "or foreign guest RAM)", where, differ, k->nr_samples);
    }
}

static void check_block(Lines *l, const CprVmdescBlock *k,
                        const CprRamBlock *b, uint64_t seed)
{
    char *now_path = b->fd >= 0 ? fd_path(b->fd) : NULL;
    char anon[CPR_VMDESC_MAX_NAME + 64], a[40], c[40];
    const char *where;
    struct stat st;
    int64_t birth_sec;
    uint32_t birth_nsec;
    bool other = false;

    snprintf(anon, sizeof(anon), "RAM block %s (anonymous memory)", k->name);
    where = now_path && *now_path ? now_path : anon;
    if (b->size != k->size) {
        human_size(b->size, a, sizeof(a));
        human_size(k->size, c, sizeof(c));
        add(l, "%s: RAM block %s is %s, the saved VM's was %s (resized?)",
            where, k->name, a, c);
        goto out;
    }
    if ((b->fd >= 0) != k->has_file) {
        add(l, "%s: RAM block %s is %s, the saved VM's was %s", where,
            k->name, b->fd >= 0 ? "a file" : "anonymous memory",
            k->has_file ? k->file.path : "anonymous memory");
        goto out;
    }
    if (k->has_file) {
        if (fstat(b->fd, &st) < 0) {
            add(l, "%s: cannot stat: %s", where, strerror(errno));
            goto out;
        }
        /*
         * Device numbers can change across a reboot; inode numbers not.
         * An inode number can be reused by a new file, whose birth time
         * (where kept) tells it apart.
         */
        if ((uint64_t)st.st_ino != k->file.ino ||
            ((uint64_t)st.st_dev != k->file.dev &&
             strcmp(now_path ? now_path : "", k->file.path))) {
            add(l, "%s: not the file the VM was saved with (that was %s, "
                "inode %" PRIu64 " on device %u:%u; this is inode %" PRIu64
                " on device %u:%u)", where, k->file.path, k->file.ino,
                major(k->file.dev), minor(k->file.dev), (uint64_t)st.st_ino,
                major(st.st_dev), minor(st.st_dev));
            other = true;
        } else if (k->file.has_birth &&
                   birth_time(b->fd, &birth_sec, &birth_nsec) &&
                   (birth_sec != k->file.birth_sec ||
                    birth_nsec != k->file.birth_nsec)) {
            format_mtime(birth_sec, birth_nsec, a, sizeof(a));
            format_mtime(k->file.birth_sec, k->file.birth_nsec, c,
                         sizeof(c));
            add(l, "%s: not the file the VM was saved with (a file created "
                "at %s, with the inode number of the one created at %s)",
                where, a, c);
            other = true;
        }
        if (b->fd_offset != k->fd_offset) {
            add(l, "%s: RAM block %s starts at offset %" PRIu64 " of the "
                "file, the saved VM's at %" PRIu64, where, k->name,
                b->fd_offset, k->fd_offset);
            goto out;
        }
        if (b->fd_offset > (uint64_t)st.st_size ||
            b->size > (uint64_t)st.st_size - b->fd_offset) {
            add(l, "%s: the file (%" PRIu64 " bytes) is shorter than RAM "
                "block %s (%" PRIu64 " bytes at offset %" PRIu64 "): "
                "truncated?", where, (uint64_t)st.st_size, k->name, b->size,
                b->fd_offset);
            goto out;
        }
        /* QEMU's prealloc writes every page, which sets the mtime. */
        if (!other && !(b->flags & CPR_RAM_PREALLOC) &&
            ((int64_t)st.st_mtim.tv_sec != k->file.mtime_sec ||
             (uint32_t)st.st_mtim.tv_nsec != k->file.mtime_nsec)) {
            format_mtime(st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, a,
                         sizeof(a));
            format_mtime(k->file.mtime_sec, k->file.mtime_nsec, c,
                         sizeof(c));
            add(l, "%s: modified since the save (at %s; saved at %s): a "
                "stale copy, or written by another process", where, a, c);
        }
    }
    check_samples(l, where, k, b, seed);
out:
    free(now_path);
}

static void check_ram(Lines *l, const CprVmdesc *d, const CprVm *vm)
{
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];
        const CprRamBlock *b = find_ram(vm, k->name);

        if (b) {
            check_block(l, k, b, d->seed);
        } else if (block_where(k)) {
            add(l, "%s: RAM block %s of the saved VM is missing on the "
                "destination", block_where(k), k->name);
        } else {
            add(l, "RAM block %s of the saved VM is missing on the "
                "destination", k->name);
        }
    }
    for (uint32_t i = 0; vm && i < vm->nr_ram; i++) {
        const CprRamBlock *b = &vm->ram[i];
        char *path;

        if (b->name && find_saved(d, b->name)) {
            continue;
        }
        path = b->fd >= 0 ? fd_path(b->fd) : NULL;
        add(l, "%s%sRAM block %s is not in the saved VM", path ? path : "",
            path ? ": " : "", b->name ? b->name : "(unnamed)");
        free(path);
    }
}

static char *refusal(const char *image_path, Lines *ram, bool ram_refused,
                     CprCmdlineDiff *diff, bool cmd_refused)
{
    char *r = NULL, *c = NULL, *msg = NULL;

    if (ram_refused && !(r = join(ram->v, ram->n))) {
        return NULL;
    }
    if (cmd_refused && !(c = join(diff->lines, diff->nr))) {
        free(r);
        return NULL;
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
    Lines ram = { 0 };
    char *args = NULL, *msg;
    size_t args_len = 0;
    struct utsname u;
    unsigned allow;
    bool ram_refused, cmd_refused;
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
    cpr_cmdline_own(&args, &args_len);
    if (ram.oom ||
        cpr_cmdline_diff(d->argv, d->argv_len, d->machine, d->cpu,
                         args ? args : "", args_len,
                         vm && vm->machine ? vm->machine : "",
                         vm && vm->cpu ? vm->cpu : "", &diff) < 0) {
        cpr_error(errp, image_path, "out of memory");
        goto out;
    }
    ram_refused = ram.n && !(allow & ALLOW_RAM);
    cmd_refused = diff.nr && !(allow & ALLOW_CMDLINE);
    if (ram_refused || cmd_refused) {
        msg = refusal(image_path, &ram, ram_refused, &diff, cmd_refused);
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
    lines_free(&ram);
    cpr_cmdline_diff_free(&diff);
    return ret;
}
