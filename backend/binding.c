/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "binding.h"
#include "binding-internal.h"
#include "disk-binding.h"
#include "fingerprint.h"
#include "cmdline.h"
#include "errmsg.h"
#include "fault-guard.h"
#include "hash.h"
#include "image-file.h"
#include "media.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

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


/* readlink of /proc/self/fd/@fd, "" if that fails; malloc()ed. */
char *cpr_fd_path(int fd)
{
    char proc[CPR_PROC_FD_LEN], buf[CPR_VMDESC_MAX_STR];
    ssize_t n;

    n = readlink(cpr_proc_fd(proc, fd), buf, sizeof(buf) - 1);
    if (n < 0) {
        n = 0;
    }
    buf[n] = 0;
    return strdup(buf);
}

const char *cpr_block_where(const CprVmdescBlock *k)
{
    return k->has_file && k->file.path && *k->file.path ? k->file.path :
           NULL;
}

/* The file's birth time, if its filesystem keeps one. */
bool cpr_file_birth(int fd, int64_t *sec, uint32_t *nsec)
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

int cpr_ram_fstat(int fd, struct stat *st)
{
    char path[64], text[32];
    ssize_t n;
    int sfd;

    if (fstat(fd, st) < 0) {
        return -1;
    }
    if (!S_ISCHR(st->st_mode)) {
        return 0;
    }
    st->st_dev = st->st_rdev;
    st->st_ino = 0;
    st->st_size = 0;
    memset(&st->st_mtim, 0, sizeof(st->st_mtim));
    snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/size",
             major(st->st_rdev), minor(st->st_rdev));
    sfd = open(path, O_RDONLY | O_CLOEXEC);
    n = sfd < 0 ? -1 : read(sfd, text, sizeof(text) - 1);
    if (sfd >= 0) {
        close(sfd);
    }
    if (n > 0) {
        text[n] = 0;
        st->st_size = (off_t)strtoll(text, NULL, 10);
    }
    return 0;
}

static char *xstrdup(const char *s, bool *oom)
{
    char *d = strdup(s ? s : "");

    if (!d) {
        *oom = true;
    }
    return d;
}



/* Identity and class of block @b into @k (name and the rest too). */
static int describe_block(CprVmdescBlock *k, const CprRamBlock *b,
                          const CprImage *img, char **errp)
{
    char detail[CPR_VMDESC_MAX_DETAIL];
    bool oom = false;
    struct stat st;

    memset(k, 0, sizeof(*k));
    if (!b->name || !*b->name || strlen(b->name) > CPR_VMDESC_MAX_NAME) {
        cpr_image_error(img, errp, "RAM block with %s name",
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
        if (cpr_ram_fstat(b->fd, &st) < 0) {
            cpr_image_error_errno(img, errp, errno, "cannot stat the file "
                                  "of RAM block %s", b->name);
            return -1;
        }
        k->has_file = true;
        k->file.dev = (uint64_t)st.st_dev;
        k->file.ino = (uint64_t)st.st_ino;
        /* A device node's birth is its boot's. */
        k->file.has_birth = !S_ISCHR(st.st_mode) &&
                            cpr_file_birth(b->fd, &k->file.birth_sec,
                                           &k->file.birth_nsec);
        if (!(k->file.path = cpr_fd_path(b->fd))) {
            oom = true;
        }
    }
    if (oom) {
        cpr_image_error(img, errp, "out of memory");
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
                          const CprImage *img)
{
    if (d->image_media == CPR_MEDIA_VOLATILE) {
        cpr_warn(host, "%s: the image is on volatile memory (%s): a host "
                 "reboot loses it", cpr_image_path(img), d->image_media_detail);
    } else if (cpr_media_kexec_only(d->image_media_detail)) {
        cpr_warn(host, "%s: the image is on DRAM-backed pmem (%s): a kexec "
                 "keeps it, a cold reboot or a power loss does not",
                 cpr_image_path(img), d->image_media_detail);
    }
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];

        if (k->media != CPR_MEDIA_VOLATILE) {
            if (cpr_media_kexec_only(k->media_detail)) {
                cpr_warn(host, "%s: the guest RAM of block %s is on "
                         "DRAM-backed pmem (%s): a kexec keeps it, a cold "
                         "reboot or a power loss does not",
                         cpr_block_where(k) ? cpr_block_where(k) :
                         cpr_image_path(img),
                         k->name, k->media_detail);
            }
            continue;
        }
        if (cpr_block_where(k)) {
            cpr_warn(host, "%s: the guest RAM of block %s is on volatile "
                     "memory (%s): a host reboot loses it", cpr_block_where(k),
                     k->name, k->media_detail);
        } else {
            cpr_warn(host, "RAM block %s is on volatile memory (%s): a host "
                     "reboot loses it", k->name, k->media_detail);
        }
    }
}

/* One block's pages the commit will sample, as the prefault sees them. */
typedef struct Touch {
    const void *host;
    uint64_t size;
    int fd;                     /* our dup of the block's file; -1: none */
    uint64_t fd_offset;
    uint32_t n;
    uint64_t index[CPR_VMDESC_MAX_SAMPLES];
} Touch;

struct CprPrefault {
    uint32_t n;
    Touch t[];
};

static void do_touch(void *opaque)
{
    Touch *t = opaque;

    const volatile uint8_t *host = t->host;

    for (uint32_t i = 0; i < t->n; i++) {
        (void)host[t->index[i] * CPR_VMDESC_PAGE];
    }
}

CprPrefault *cpr_binding_prefault_new(const CprVmdesc *d, const CprVm *vm)
{
    uint32_t n = MIN(cpr_vm_nr_ram(vm), d->nr_blocks);
    CprPrefault *pf = n ? calloc(1, sizeof(*pf) + n * sizeof(Touch)) : NULL;

    for (uint32_t i = 0; pf && i < n; i++) {
        const CprRamBlock *b = cpr_vm_ram(vm, i);
        Touch *t = &pf->t[pf->n];
        struct stat st;

        /* A file that is memory itself has nothing to bring in: no job,
         * and no thread for it inside the migrate command. */
        if (!b->host || !b->size ||
            (b->fd >= 0 && cpr_media_in_memory(d->blocks[i].media,
                                               d->blocks[i].media_detail))) {
            continue;
        }
        *t = (Touch){ b->host, b->size, -1, b->fd_offset, 0, { 0 } };
        t->n = cpr_fingerprint_pages(d->seed, d->blocks[i].name, b->size,
                                     t->index);
        /* What the commit reads (commit_block); QEMU's descriptor is
         * valid during out_open only. */
        if (b->fd >= 0 && (b->flags & CPR_RAM_SHARED) &&
            fstat(b->fd, &st) == 0 && S_ISREG(st.st_mode)) {
            t->fd = fcntl(b->fd, F_DUPFD_CLOEXEC, 0);
        }
        pf->n++;
    }
    if (pf && !pf->n) {
        free(pf);
        pf = NULL;
    }
    return pf;
}

/*
 * The seed, so the pages the commit will sample, are known at open: have
 * them ready before the commit.  A file's, which the commit reads, in
 * the page cache (a read of a page of a disk file not there waits for
 * the device); a block without a file, which it reads through the
 * mapping, mapped in even where the guest never touched it (a fault
 * costs µs; on a fresh page table, tens of µs).  Best effort: a page
 * that is gone is the commit's error to report.
 */
void cpr_binding_prefault_run(void *opaque)
{
    CprPrefault *pf = opaque;

    for (uint32_t i = 0; i < pf->n; i++) {
        Touch *t = &pf->t[i];

        /*
         * A page of a file not in the page cache: read() reads ahead a
         * few pages, a fault on a mapping the device's whole readahead
         * window (8 MiB here: half a GiB for 64 pages of a sparse file).
         */
        if (t->fd >= 0) {
            uint64_t h[CPR_VMDESC_MAX_SAMPLES];

            if (cpr_fingerprint_hash_fd(t->fd, t->fd_offset, t->size, 0,
                                        t->index, t->n, h, NULL) != -2) {
                continue;
            }
        }
        (void)cpr_fault_guard(t->host, (size_t)t->size, do_touch, t);
    }
}

void cpr_binding_prefault_free(void *opaque)
{
    CprPrefault *pf = opaque;

    for (uint32_t i = 0; pf && i < pf->n; i++) {
        if (pf->t[i].fd >= 0) {
            close(pf->t[i].fd);
        }
    }
    free(pf);
}

CprVmdesc *cpr_binding_open(const CprHost *host, const CprMetadata *md,
                            const CprVm *vm, CprImage *img, char **errp)
{
    CprVmdesc *d = calloc(1, sizeof(*d));
    const char *detail;
    bool oom = !d;

    if (oom) {
        cpr_image_error(img, errp, "out of memory");
        return NULL;
    }
    d->version = CPR_VMDESC_VERSION;
    if (getrandom(&d->seed, sizeof(d->seed), 0) != sizeof(d->seed)) {
        cpr_image_error_errno(img, errp, errno, "cannot get random bytes");
        goto fail;
    }
    d->qemu_version = xstrdup(md->qemu_version, &oom);
    d->kernel_release = xstrdup(md->kernel_release, &oom);
    d->machine = xstrdup(cpr_vm_machine(vm), &oom);
    d->cpu = xstrdup(cpr_vm_cpu(vm), &oom);
    d->argv_len = md->argv ? md->argv_len : 0;
    d->argv = malloc(d->argv_len + 1);
    if (d->argv) {
        memcpy(d->argv, md->argv ? md->argv : "", d->argv_len);
    } else {
        oom = true;
    }
    d->image_media = cpr_image_media(img, &detail);
    d->image_media_detail = xstrdup(detail, &oom);
    if (oom) {
        cpr_image_error(img, errp, "out of memory");
        goto fail;
    }
    if (strlen(d->machine) > 255 || strlen(d->cpu) > 255) {
        cpr_image_error(img, errp, "machine type or CPU model name too "
                        "long");
        goto fail;
    }
    if (cpr_vm_nr_ram(vm)) {
        if (cpr_vm_nr_ram(vm) > CPR_VMDESC_MAX_BLOCKS) {
            cpr_image_error(img, errp, "too many RAM blocks (%u)",
                            cpr_vm_nr_ram(vm));
            goto fail;
        }
        d->blocks = calloc(cpr_vm_nr_ram(vm), sizeof(*d->blocks));
        if (!d->blocks) {
            cpr_image_error(img, errp, "out of memory");
            goto fail;
        }
        for (uint32_t i = 0; i < cpr_vm_nr_ram(vm); i++) {
            d->nr_blocks = i + 1;
            if (describe_block(&d->blocks[i], cpr_vm_ram(vm, i), img,
                               errp) < 0) {
                goto fail;
            }
            for (uint32_t j = 0; j < i; j++) {
                if (!strcmp(d->blocks[j].name, d->blocks[i].name)) {
                    cpr_image_error(img, errp, "two RAM blocks named %s",
                                    d->blocks[i].name);
                    goto fail;
                }
            }
        }
    }
    cpr_disk_prefetch(d, vm);
    warn_volatile(host, d, img);
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
                        uint64_t seed, const CprImage *img, char **errp)
{
    const char *where = cpr_block_where(k);
    struct stat st = { 0 };

    if (k->has_file) {
        if (cpr_ram_fstat(b->fd, &st) < 0) {
            cpr_error_errno(errp, where, errno, "cannot stat the file of RAM "
                            "block %s", k->name);
            return -1;
        }
        k->file.size = (uint64_t)st.st_size;
        k->file.mtime_sec = (int64_t)st.st_mtim.tv_sec;
        k->file.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
        k->file.nlink = (uint32_t)st.st_nlink;
        /* A device QEMU mapped is as long as the mapping (mmap says). */
        if (!S_ISCHR(st.st_mode) &&
            (b->fd_offset > (uint64_t)st.st_size ||
             b->size > (uint64_t)st.st_size - b->fd_offset)) {
            cpr_error(errp, where, "file of RAM block %s is shorter (%" PRIu64
                      " bytes) than the block (%" PRIu64 " bytes at offset %"
                      PRIu64 "): truncated?", k->name, (uint64_t)st.st_size,
                      b->size, b->fd_offset);
            return -1;
        }
    }
    {
        uint64_t index[CPR_VMDESC_MAX_SAMPLES], xxh3[CPR_VMDESC_MAX_SAMPLES];
        uint32_t n = cpr_fingerprint_pages(seed, k->name, b->size, index);
        int ret = -2;

        /*
         * A regular file QEMU maps shared holds what the mapping shows:
         * read it there, mapped here or not (the exec: helper).  A read
         * of a page this process never touched costs a copy; a fault on
         * it, tens of µs (on tmpfs it allocates the page of a hole), in
         * the pause.  A device's read() need not show its mapping.
         */
        if (b->fd >= 0 && (b->flags & CPR_RAM_SHARED) &&
            (!b->host || S_ISREG(st.st_mode))) {
            ret = cpr_fingerprint_hash_fd(b->fd, b->fd_offset, b->size, seed,
                                          index, n, xxh3, NULL);
        }
        if (ret == -2 && b->size && !b->host) {
            cpr_image_error(img, errp, "RAM block %s is not mapped",
                            k->name);
            return -1;
        }
        if (ret == -2) {
            ret = cpr_fingerprint_hash(b->host, b->size, seed, index, n, xxh3,
                                       NULL);
        }
        if (ret < 0) {
            cpr_error(errp, where ? where : cpr_image_path(img),
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

int cpr_binding_commit(CprVmdesc *d, const CprHost *host, const CprVm *vm,
                       const CprImage *img, char **errp)
{
    uint32_t nr = cpr_vm_nr_ram(vm);
    CprVmdescBlock *blocks = NULL;
    int ret = -1;

    if (nr > CPR_VMDESC_MAX_BLOCKS) {
        cpr_image_error(img, errp, "too many RAM blocks (%u)", nr);
        return -1;
    }
    if (nr && !(blocks = calloc(nr, sizeof(*blocks)))) {
        cpr_image_error(img, errp, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < nr; i++) {
        const CprRamBlock *b = cpr_vm_ram(vm, i);
        struct stat st = { 0 };
        CprVmdescBlock *open_k = NULL;

        if (b->fd >= 0 && cpr_ram_fstat(b->fd, &st) < 0) {
            cpr_image_error_errno(img, errp, errno, "cannot stat the file "
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
        } else if (describe_block(&blocks[i], b, img, errp) < 0) {
            goto out;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (!strcmp(blocks[j].name, blocks[i].name)) {
                cpr_image_error(img, errp, "two RAM blocks named %s",
                                blocks[i].name);
                goto out;
            }
        }
        if (commit_block(&blocks[i], b, d->seed, img, errp) < 0) {
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
        return ret;
    }
    return cpr_disk_record(d, vm, host, img, errp);
}
