/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "writer.h"
#include "errmsg.h"
#include "format.h"
#include "metadata.h"
#include "persist.h"
#include "prefault.h"
#include "placement.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Far beyond any VM, and keeps every offset sum below INT64_MAX. */
#define MAX_STREAM (1ull << 60)

struct CprWriter {
    char *path;
    int fd;
    CprPersist *p;
    CprMetadata md;             /* collected at open, off the pause */
    uint64_t gen;               /* generation this save will commit */
    uint64_t live_off, live_len, live_xxh3;
    CprPlacement place;
    uint64_t pos;               /* append position */
    uint64_t len;               /* stream length */
    uint64_t faulted;           /* file offset the mapping is populated to */
    CprPrefault *bg;            /* populating ahead of a large stream */
    XXH3_state_t *hash;
    bool hash_streaming;        /* every byte so far came in order */
    bool failed;                /* a write failed: never commit */
    bool finished;              /* committed or aborted */
};

/* Superblock first, persisted before anything else refers to it. */
static int init_image(int fd, const char *path, char **errp)
{
    CprSuperblock sb = { .version = CPR_FORMAT_VERSION };
    uint8_t buf[CPR_SB_SIZE];
    CprPersist *p;
    int ret;

    if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
        cpr_error_errno(errp, path, errno, "cannot get random bytes");
        return -1;
    }
    sb.ctime_ns = cpr_realtime_ns();
    cpr_sb_encode(&sb, buf);
    p = cpr_persist_map(fd, path, CPR_INITIAL_SIZE, errp);
    if (!p) {
        return -1;
    }
    cpr_persist_write(p, CPR_SB_OFFSET, buf, sizeof(buf));
    ret = cpr_persist_range(p, CPR_SB_OFFSET, sizeof(buf), errp);
    cpr_persist_unmap(p);
    return ret;
}

static int fsync_parent(const char *path, char **errp)
{
    char *copy = strdup(path);
    int dfd, ret = 0;

    if (!copy) {
        cpr_error(errp, path, "out of memory");
        return -1;
    }
    dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        cpr_error_errno(errp, path, errno, "cannot sync its directory");
        ret = -1;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    free(copy);
    return ret;
}

/*
 * Build a new image under a temporary name and link it into place, so
 * that a crash never leaves a half-initialised file at @path (which
 * every later save would then have to refuse as "not ours").  Losing a
 * race with another creator is fine: the caller opens theirs.
 */
static int create_image(const char *path, char **errp)
{
    char *tmp = NULL;
    int fd, ret = -1;

    if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        cpr_error(errp, path, "out of memory");
        return -1;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot create");
        free(tmp);
        return -1;
    }
    if (init_image(fd, path, errp) < 0) {
        goto out;
    }
    if (fsync(fd) < 0) {
        cpr_error_errno(errp, path, errno, "cannot sync");
        goto out;
    }
    if (link(tmp, path) < 0 && errno != EEXIST) {
        cpr_error_errno(errp, path, errno, "cannot create");
        goto out;
    }
    ret = fsync_parent(path, errp);
out:
    unlink(tmp);
    close(fd);
    free(tmp);
    return ret;
}

static int open_locked(const char *path, char **errp)
{
    int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC;
    int fd = open(path, flags);

    if (fd < 0 && errno == ENOENT) {
        if (create_image(path, errp) < 0) {
            return -1;
        }
        fd = open(path, flags);
    }
    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            cpr_error(errp, path, "in use by another save or a restore");
        } else {
            cpr_error_errno(errp, path, errno, "cannot lock");
        }
        close(fd);
        return -1;
    }
    return fd;
}

/* Read the header; initialise an empty file; refuse anything not ours. */
static int check_header(CprWriter *w, CprSlots *slots, char **errp)
{
    uint8_t *hdr = NULL;
    CprSuperblock sb;
    struct stat st;
    int ret = -1;

    if (fstat(w->fd, &st) < 0) {
        cpr_error_errno(errp, w->path, errno, "cannot stat");
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cpr_error(errp, w->path, "is not a regular file");
        return -1;
    }
    if (st.st_size == 0 && init_image(w->fd, w->path, errp) < 0) {
        return -1;
    }
    hdr = calloc(1, CPR_HEADER_SIZE);
    if (!hdr) {
        cpr_error(errp, w->path, "out of memory");
        return -1;
    }
    if (pread(w->fd, hdr, CPR_HEADER_SIZE, 0) < 0) {
        cpr_error_errno(errp, w->path, errno, "cannot read");
        goto out;
    }
    /* A short file leaves zeros in hdr: no superblock. */
    switch (cpr_sb_decode(hdr, CPR_BLOCK_SIZE, &sb)) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_error(errp, w->path, "image format version %u is newer than this "
                  "transport (%u); refusing to overwrite it", sb.version,
                  CPR_FORMAT_VERSION);
        goto out;
    default:
        cpr_error(errp, w->path, "exists and is not a pmem CPR image; "
                  "refusing to overwrite it");
        goto out;
    }
    cpr_slots_decode(hdr, slots);
    if (slots->newest >= 0 &&
        slots->state[slots->newest] == CPR_DECODE_TOO_NEW) {
        cpr_error(errp, w->path, "image format version %u is newer than this "
                  "transport (%u); refusing to overwrite it",
                  slots->rec[slots->newest].version, CPR_FORMAT_VERSION);
        goto out;
    }
    ret = 0;
out:
    free(hdr);
    return ret;
}

CprWriter *cpr_writer_open(const char *path, const char *qemu_version,
                           char **errp)
{
    CprWriter *w = calloc(1, sizeof(*w));
    CprSlots slots;

    if (!w) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    w->fd = -1;
    if (!(w->path = strdup(path)) || !(w->hash = XXH3_createState())) {
        cpr_error(errp, path, "out of memory");
        goto fail;
    }
    cpr_metadata_collect(&w->md, qemu_version);
    w->fd = open_locked(path, errp);
    if (w->fd < 0 || check_header(w, &slots, errp) < 0) {
        goto fail;
    }
    w->gen = 1;
    if (slots.newest >= 0) {
        const CprRecord *live = &slots.rec[slots.newest];

        if (live->generation == UINT64_MAX) {
            cpr_error(errp, path, "generation counter exhausted");
            goto fail;
        }
        w->gen = live->generation + 1;
        w->live_off = live->payload_off;
        w->live_len = live->payload_len;
        w->live_xxh3 = live->payload_xxh3;
    }
    w->place = cpr_place_new(w->live_off, w->live_len);
    w->p = cpr_persist_map(w->fd, path, CPR_INITIAL_SIZE, errp);
    if (!w->p) {
        goto fail;
    }
    w->faulted = w->place.base;
    XXH3_64bits_reset(w->hash);
    w->hash_streaming = true;
    return w;
fail:
    cpr_writer_close(w);
    return NULL;
}

/*
 * Populate the mapping up to file offset @end, ahead of use by as much
 * as the stream has grown so far (bounded), so a big stream takes few
 * calls and a small one does not pay for megabytes it never writes.
 */
static void populate(CprWriter *w, uint64_t end)
{
    uint64_t ahead = min_u64(max_u64(w->len, CPR_PREFAULT_MIN),
                             CPR_PREFAULT_AHEAD);

    w->faulted = max_u64(w->faulted, cpr_prefault_done(w->bg));
    if (end > w->faulted) {
        end = min_u64(max_u64(end, w->faulted + ahead),
                      cpr_persist_size(w->p));
        cpr_persist_prefault(w->p, w->faulted, end - w->faulted);
        w->faulted = end;
        cpr_prefault_skip(w->bg, end);
    }
}

static void stop_prefault(CprWriter *w)
{
    cpr_prefault_stop(w->bg);
    w->bg = NULL;
}

/* Grow the file to hold file offset @end; a remap loses the page tables. */
static int grow(CprWriter *w, uint64_t end, char **errp)
{
    uint64_t size = cpr_persist_size(w->p);

    if (end <= size) {
        return 0;
    }
    stop_prefault(w);
    if (cpr_persist_grow(w->p, cpr_grow_target(size, end), errp) < 0) {
        return -1;
    }
    w->faulted = w->place.base + w->len;
    return 0;
}

/* Room for stream bytes [0, end): relocate above the live payload if the
 * space below it is exhausted, grow the file if needed. */
static int reserve(CprWriter *w, uint64_t end, char **errp)
{
    if (end > MAX_STREAM) {
        cpr_error(errp, w->path, "stream too large");
        return -1;
    }
    if (end > w->place.limit) {
        uint64_t high = cpr_place_above(w->live_off, w->live_len);

        stop_prefault(w);
        if (grow(w, high + end, errp) < 0) {
            return -1;
        }
        /* Below the live payload -> above it: the ranges are disjoint. */
        w->faulted = high;
        populate(w, high + end);
        cpr_persist_write(w->p, high, cpr_persist_view(w->p, w->place.base),
                          w->len);
        w->place = (CprPlacement){ high, CPR_NO_LIMIT };
    }
    if (grow(w, w->place.base + end, errp) < 0) {
        return -1;
    }
    populate(w, w->place.base + end);
    return 0;
}

static int check_usable(CprWriter *w, char **errp)
{
    if (w->finished) {
        cpr_error(errp, w->path, "save already committed or aborted");
        return -1;
    }
    if (w->failed) {
        cpr_error(errp, w->path, "an earlier write to this save failed");
        return -1;
    }
    return 0;
}

int cpr_writer_preallocate(CprWriter *w, uint64_t size, char **errp)
{
    if (check_usable(w, errp) < 0) {
        return -1;
    }
    stop_prefault(w);
    /* Exactly as asked (in 2 MiB steps), unlike a growing stream. */
    if (cpr_persist_grow(w->p, cpr_align_up(size, CPR_ALIGN), errp) < 0) {
        return -1;
    }
    w->faulted = w->place.base + w->len;
    cpr_persist_prefault(w->p, 0, cpr_persist_size(w->p));
    return 0;
}

int cpr_writer_prepare(CprWriter *w, char **errp)
{
    /* A stream like the last; the first one into an image gets all of it
     * (8 MiB, or what "cpr-pmem create --size" made). */
    uint64_t expect = w->live_len ? w->live_len + w->live_len / 4 :
                      cpr_persist_size(w->p) - w->place.base;
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));

    if (check_usable(w, errp) < 0 ||
        grow(w, w->place.base + expect, errp) < 0) {
        return -1;
    }
    cpr_persist_prefault(w->p, slot, CPR_BLOCK_SIZE);
    populate(w, w->place.base + min_u64(expect, CPR_PREFAULT_OPEN));
    if (expect > CPR_PREFAULT_OPEN && !w->bg) {
        w->bg = cpr_prefault_start(w->p, w->faulted, w->place.base + expect);
    }
    return 0;
}

/* Total size of @iov, or -1 if it exceeds the largest stream. */
static int64_t iov_total(const struct iovec *iov, int iovcnt)
{
    uint64_t total = 0;

    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > MAX_STREAM - total) {
            return -1;
        }
        total += iov[i].iov_len;
    }
    return (int64_t)total;
}

/* Store @iov at stream offset @off: one reservation for the whole vector. */
static int64_t store(CprWriter *w, uint64_t off, const struct iovec *iov,
                     int iovcnt, char **errp)
{
    int64_t total = iov_total(iov, iovcnt);
    uint64_t dst;

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    if (total < 0 || off > MAX_STREAM - (uint64_t)total) {
        cpr_error(errp, w->path, "stream too large");
        w->failed = true;
        return -1;
    }
    if (reserve(w, off + (uint64_t)total, errp) < 0) {
        w->failed = true;
        return -1;
    }
    if (off > w->len) {
        cpr_persist_zero(w->p, w->place.base + w->len, off - w->len);
    }
    if (off != w->len) {
        w->hash_streaming = false;
    }
    dst = w->place.base + off;
    for (int i = 0; i < iovcnt; i++) {
        cpr_persist_write(w->p, dst, iov[i].iov_base, iov[i].iov_len);
        if (w->hash_streaming) {
            XXH3_64bits_update(w->hash, iov[i].iov_base, iov[i].iov_len);
        }
        dst += iov[i].iov_len;
    }
    w->len = max_u64(w->len, off + (uint64_t)total);
    return total;
}

int64_t cpr_writer_appendv(CprWriter *w, const struct iovec *iov, int iovcnt,
                           char **errp)
{
    int64_t n = store(w, w->pos, iov, iovcnt, errp);

    if (n > 0) {
        w->pos += (uint64_t)n;
    }
    return n;
}

int64_t cpr_writer_pwritev(CprWriter *w, uint64_t off,
                           const struct iovec *iov, int iovcnt, char **errp)
{
    int64_t n = store(w, off, iov, iovcnt, errp);

    /* Out-of-order bytes: the checksum is taken from the media instead. */
    w->hash_streaming = false;
    return n;
}

int cpr_writer_append(CprWriter *w, const void *buf, size_t len, char **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return cpr_writer_appendv(w, &iov, 1, errp) < 0 ? -1 : 0;
}

int cpr_writer_pwrite(CprWriter *w, uint64_t off, const void *buf,
                      size_t len, char **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return cpr_writer_pwritev(w, off, &iov, 1, errp) < 0 ? -1 : 0;
}

/* Fill in the metadata, then write @rec into its slot, durably. */
static int publish(CprWriter *w, CprRecord *rec, char **errp)
{
    uint8_t buf[CPR_REC_SIZE];
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(rec->generation));

    rec->ctime_ns = cpr_realtime_ns();
    memcpy(rec->qemu_version, w->md.qemu_version, sizeof(rec->qemu_version));
    memcpy(rec->kernel_release, w->md.kernel_release,
           sizeof(rec->kernel_release));
    rec->cmdline_fp = w->md.cmdline_fp;
    /* Into the slot the live record does not use. */
    cpr_record_encode(rec, buf);
    cpr_persist_write(w->p, slot, buf, sizeof(buf));
    if (cpr_persist_range(w->p, slot, sizeof(buf), errp) < 0) {
        w->failed = true;
        return -1;
    }
    w->finished = true;
    return 0;
}

int cpr_writer_commit(CprWriter *w, char **errp)
{
    CprRecord rec = { .version = CPR_FORMAT_VERSION };

    if (check_usable(w, errp) < 0 || reserve(w, w->len, errp) < 0) {
        return -1;
    }
    stop_prefault(w);
    rec.generation = w->gen;
    rec.payload_off = w->place.base;
    rec.payload_len = w->len;
    rec.payload_xxh3 = w->hash_streaming ?
        XXH3_64bits_digest(w->hash) :
        XXH3_64bits(cpr_persist_view(w->p, w->place.base), w->len);
    /* 1: payload durable, so the record never points at missing bytes. */
    if (cpr_persist_range(w->p, rec.payload_off, rec.payload_len, errp) < 0) {
        w->failed = true;
        return -1;
    }
    /* 2: the record. */
    if (publish(w, &rec, errp) < 0) {
        return -1;
    }
    /*
     * The save is over: let a reader in now rather than after QEMU's
     * cleanup unmaps what may be gigabytes.  This writer stores nothing
     * more.
     */
    flock(w->fd, LOCK_UN);
    return 0;
}

int cpr_writer_invalidate(CprWriter *w, char **errp)
{
    /* The old payload stays described, so the next save still avoids it
     * and an inspector can see what was invalidated. */
    CprRecord rec = {
        .version = CPR_FORMAT_VERSION,
        .generation = w->gen,
        .flags = CPR_REC_FLAG_INVALIDATED,
        .payload_off = w->live_off,
        .payload_len = w->live_len,
        .payload_xxh3 = w->live_xxh3,
    };

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    return publish(w, &rec, errp);
}

void cpr_writer_abort(CprWriter *w)
{
    stop_prefault(w);
    w->finished = true;
}

void cpr_writer_close(CprWriter *w)
{
    if (!w) {
        return;
    }
    stop_prefault(w);
    cpr_persist_unmap(w->p);
    if (w->fd >= 0) {
        close(w->fd);   /* drops the flock */
    }
    XXH3_freeState(w->hash);
    free(w->path);
    free(w);
}

bool cpr_writer_is_pmem(const CprWriter *w)
{
    return cpr_persist_is_pmem(w->p);
}

uint64_t cpr_writer_generation(const CprWriter *w)
{
    return w->gen;
}

uint64_t cpr_writer_payload_offset(const CprWriter *w)
{
    return w->place.base;
}

const char *cpr_writer_path(const CprWriter *w)
{
    return w->path;
}
