/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save path (FORMAT.md, "Save and commit protocol").
 *
 * Invariants, each enforced in one place:
 *
 *  I1  The new payload never overlaps the live one.  Its base and limit
 *      come only from cpr_place_new() (cpr_writer_open) and
 *      cpr_place_above() (relocate), and reserve() relocates before a
 *      stream crosses the limit.
 *  I2  Only the other slot is written: publish() writes slot gen % 2,
 *      with gen = live generation + 1 (open_live).
 *  I3  The payload is durable before the record: cpr_writer_commit()
 *      calls publish() only once cpr_persist_range() of the payload
 *      returned 0.
 *  I4  A failed publish leaves the live record the one that loads:
 *      publish() stores the slot's old bytes back (as LMDB undoes a
 *      failed meta page write), and the next save makes them durable
 *      before anything else (settle_slot).
 *  I5  No store lands outside the file or in a hole: reserve() grows and
 *      allocates (ensure_room) before anything is stored there; if a
 *      third party truncates the file anyway, the persistence layer's
 *      fault guard turns the SIGBUS into an error.
 *  I6  A file truncated or rewritten behind the writer's back is not
 *      committed: cpr_writer_commit() checks cpr_image_check_intact()
 *      first.
 *
 * Everything read from the file is checked before it steers anything: a
 * live record whose payload is not in the file (or is sparse) protects
 * nothing and places nothing (open_live).
 *
 * The payload is the stream, then the VM description (FORMAT.md,
 * binding.h), collected at open and completed at commit, when
 * append_desc() stores it after the stream's last byte through the same
 * store() as the stream: I1, I3 and I5 cover it unchanged, and the record
 * (version 2) says where the stream ends.
 */
#include "writer.h"
#include "binding.h"
#include "errmsg.h"
#include "format.h"
#include "hash.h"
#include "image-file.h"
#include "metadata.h"
#include "persist.h"
#include "placement.h"
#include "populate.h"
#include "vmdesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

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
    CprImageFile file;          /* exclusive lock; the header as opened */
    CprPersist *p;
    CprPopulator *pop;
    CprMetadata md;             /* collected at open, off the pause */
    CprVmdesc *desc;            /* likewise; completed at commit */
    uint64_t gen;               /* generation this save will commit */
    CprRecord live;             /* payload fields; length 0: nothing live */
    CprPlacement place;
    uint64_t allocated;         /* [place.base, allocated) has no holes */
    uint64_t old_end;           /* the file's size before this save */
    uint64_t pos;               /* append position */
    uint64_t len;               /* stream length */
    XXH3_state_t *hash;
    bool hash_streaming;        /* every byte so far came in order */
    bool failed;                /* a write failed: never commit */
    bool finished;              /* committed or aborted */
};

/* The newest record is what the save must not disturb (I1, I2). */
static int open_live(CprWriter *w, char **errp)
{
    const CprSlots *s = &w->file.slots;
    const CprRecord *rec;
    char *why = NULL;

    w->gen = 1;
    if (s->newest < 0) {
        return 0;
    }
    rec = &s->rec[s->newest];
    if (rec->generation >= CPR_MAX_GENERATION) {
        cpr_error(errp, w->path, "generation counter exhausted");
        return -1;
    }
    w->gen = rec->generation + 1;
    /* A payload that is not all there cannot load either. */
    if (cpr_image_payload_present(&w->file, w->path, rec, &why)) {
        w->live = *rec;
    }
    free(why);
    return 0;
}

/*
 * I4, continued: the slot this save will publish into must hold on the
 * media what it holds here.  After a failed commit whose undo could not
 * be flushed either, the media may still hold that save's record, whose
 * payload this save may overwrite: a crash before our record is durable
 * would then find a valid record over a torn payload.
 */
static int settle_slot(CprWriter *w, char **errp)
{
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));

    if (cpr_persist_store(w->p, slot, w->file.header + slot, CPR_REC_SIZE,
                          errp) < 0 ||
        cpr_persist_range(w->p, slot, CPR_REC_SIZE, errp) < 0) {
        return -1;
    }
    return 0;
}

CprWriter *cpr_writer_open(const char *path, const char *qemu_version,
                           char **errp)
{
    CprHost host = { qemu_version, NULL, NULL };

    return cpr_writer_open_vm(path, &host, NULL, errp);
}

CprWriter *cpr_writer_open_vm(const char *path, const CprHost *host,
                              const CprVm *vm, char **errp)
{
    CprWriter *w = calloc(1, sizeof(*w));

    if (!w) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    w->file.fd = -1;
    if (!(w->path = strdup(path)) || !(w->hash = XXH3_createState()) ||
        !(w->pop = cpr_populator_new())) {
        cpr_error(errp, path, "out of memory");
        goto fail;
    }
    cpr_metadata_collect(&w->md, host ? host->qemu_version : NULL);
    if (cpr_image_open_write(path, &w->file, errp) < 0 ||
        open_live(w, errp) < 0) {
        goto fail;
    }
    w->desc = cpr_binding_open(host, &w->md, vm, w->file.fd, path, errp);
    if (!w->desc) {
        goto fail;
    }
    w->place = cpr_place_new(w->live.payload_off, w->live.payload_len);
    w->allocated = w->place.base;
    w->p = cpr_persist_map(w->file.fd, path, CPR_INITIAL_SIZE, errp);
    if (!w->p) {
        goto fail;
    }
    if (settle_slot(w, errp) < 0) {
        goto fail;
    }
    w->old_end = cpr_persist_size(w->p);
    cpr_populator_reset(w->pop, w->p, w->place.base);
    XXH3_64bits_reset(w->hash);
    w->hash_streaming = true;
    return w;
fail:
    cpr_writer_close(w);
    return NULL;
}

/* How far ahead of the stream to populate: as much as it has grown so
 * far (bounded), so a big stream takes few calls and a small one does not
 * pay for megabytes it never writes. */
static uint64_t ahead(const CprWriter *w)
{
    return min_u64(max_u64(w->len, CPR_POPULATE_MIN), CPR_POPULATE_AHEAD);
}

/*
 * I5: the file holds [0, @end) with blocks, and the mapping covers it.
 * What this save grows is allocated as it grows; holes can only be where
 * the file was before, and only if it was sparse then (punched by
 * someone, or copied without its holes filled): looked for in big steps.
 */
static int ensure_room(CprWriter *w, uint64_t end, char **errp)
{
    uint64_t size = cpr_persist_size(w->p);

    if (end > size) {
        cpr_populator_stop(w->pop);
        if (cpr_persist_grow(w->p, cpr_grow_target(size, end), end,
                             errp) < 0) {
            return -1;
        }
        /* A remap loses the page tables; bytes already stored need none. */
        cpr_populator_reset(w->pop, w->p, w->place.base + w->len);
        size = cpr_persist_size(w->p);
    }
    if (w->file.sparse && end > w->allocated && w->allocated < w->old_end) {
        uint64_t to = min_u64(max_u64(end, w->allocated + ahead(w)),
                              w->old_end);

        if (cpr_persist_allocate(w->p, w->allocated, to - w->allocated,
                                 errp) < 0) {
            return -1;
        }
        w->allocated = to;
    }
    w->allocated = max_u64(w->allocated, end);
    return 0;
}


/* I1: the space below the live payload is exhausted; move above it. */
static int relocate(CprWriter *w, uint64_t end, char **errp)
{
    uint64_t high = cpr_place_above(w->live.payload_off, w->live.payload_len);
    uint64_t low = w->place.base;

    cpr_populator_stop(w->pop);
    w->place = (CprPlacement){ high, CPR_NO_LIMIT };
    w->allocated = high;
    if (ensure_room(w, high + end, errp) < 0) {
        return -1;
    }
    cpr_populator_reset(w->pop, w->p, high);
    cpr_populator_need(w->pop, high, high + end, ahead(w));
    return cpr_persist_move(w->p, high, low, w->len, errp);
}

/* Room for stream bytes [0, end), relocated (I1) and allocated (I5). */
static int reserve(CprWriter *w, uint64_t end, char **errp)
{
    if (end > MAX_STREAM) {
        cpr_error(errp, w->path, "stream too large");
        return -1;
    }
    if (end > w->place.limit && relocate(w, end, errp) < 0) {
        return -1;
    }
    if (ensure_room(w, w->place.base + end, errp) < 0) {
        return -1;
    }
    cpr_populator_need(w->pop, w->place.base + w->len, w->place.base + end,
                       ahead(w));
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

int cpr_writer_populate(CprWriter *w, char **errp)
{
    /* A stream like the last; the first one into an image gets all of it
     * (8 MiB, or what "cpr-pmem create --size" made), unless the file is
     * sparse: then its size says nothing about what a stream needs. */
    uint64_t base = w->place.base;
    uint64_t expect = w->live.payload_len ?
                      cpr_place_room(w->live.payload_len) :
                      cpr_persist_size(w->p) - base;

    if (w->file.sparse && !w->live.payload_len) {
        expect = min_u64(expect, CPR_INITIAL_SIZE - base);
    }

    if (check_usable(w, errp) < 0 || ensure_room(w, base + expect, errp) < 0) {
        return -1;
    }
    cpr_persist_populate(w->p, CPR_SLOT_OFFSET(cpr_slot_for(w->gen)),
                         CPR_BLOCK_SIZE);
    cpr_populator_need(w->pop, base, base + min_u64(expect, CPR_POPULATE_OPEN),
                       0);
    cpr_populator_background(w->pop, base + expect);
    return 0;
}

int cpr_writer_populate_size(CprWriter *w, uint64_t size, char **errp)
{
    if (check_usable(w, errp) < 0) {
        return -1;
    }
    if (size > MAX_STREAM) {
        cpr_error(errp, w->path, "size too large");
        return -1;
    }
    /* Exactly as asked (in 2 MiB steps), unlike a growing stream. */
    size = cpr_align_up(size, CPR_ALIGN);
    cpr_populator_stop(w->pop);
    if (cpr_persist_grow(w->p, size, size, errp) < 0 ||
        cpr_persist_allocate(w->p, 0, cpr_persist_size(w->p), errp) < 0) {
        return -1;
    }
    w->allocated = cpr_persist_size(w->p);
    cpr_populator_reset(w->pop, w->p, 0);
    cpr_populator_need(w->pop, 0, cpr_persist_size(w->p), 0);
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
        goto fail;
    }
    if (reserve(w, off + (uint64_t)total, errp) < 0) {
        goto fail;
    }
    if (off > w->len &&
        cpr_persist_zero(w->p, w->place.base + w->len, off - w->len,
                         errp) < 0) {
        goto fail;
    }
    if (off != w->len) {
        w->hash_streaming = false;
    }
    dst = w->place.base + off;
    for (int i = 0; i < iovcnt; i++) {
        if (cpr_persist_store(w->p, dst, iov[i].iov_base, iov[i].iov_len,
                              errp) < 0) {
            goto fail;
        }
        if (w->hash_streaming) {
            XXH3_64bits_update(w->hash, iov[i].iov_base, iov[i].iov_len);
        }
        dst += iov[i].iov_len;
    }
    w->len = max_u64(w->len, off + (uint64_t)total);
    return total;
fail:
    w->failed = true;
    return -1;
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

int cpr_writer_append(CprWriter *w, const void *buf, size_t len,
                      char **errp)
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

/* I2, I4: @rec into the slot the live record does not use, durably. */
static int publish(CprWriter *w, CprRecord *rec, char **errp)
{
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));
    const uint8_t *before = w->file.header + slot;
    uint8_t buf[CPR_REC_SIZE];

    rec->version = CPR_REC_VERSION;
    rec->generation = w->gen;
    rec->ctime_ns = cpr_realtime_ns();
    memcpy(rec->qemu_version, w->md.qemu_version, sizeof(rec->qemu_version));
    memcpy(rec->kernel_release, w->md.kernel_release,
           sizeof(rec->kernel_release));
    rec->cmdline_fp = w->md.cmdline_fp;
    cpr_record_encode(rec, buf);
    if (cpr_persist_store(w->p, slot, buf, sizeof(buf), errp) == 0 &&
        cpr_persist_range(w->p, slot, sizeof(buf), errp) == 0) {
        w->finished = true;
        return 0;
    }
    /*
     * The record may sit in the page cache, where a restore in this boot
     * would find it: put the slot's old bytes back, and make them durable
     * if the media lets us (if not, it holds one whole record or the
     * other, each with a durable payload).
     */
    if (cpr_persist_store(w->p, slot, before, sizeof(buf), NULL) == 0) {
        cpr_persist_range(w->p, slot, sizeof(buf), NULL);
    }
    w->failed = true;
    return -1;
}

/*
 * The VM description goes right after the stream, like more stream: the
 * payload checksum covers it, and placement and growth treat it alike.
 */
static int append_desc(CprWriter *w, const CprVm *vm, char **errp)
{
    struct iovec iov;
    size_t len = 0;
    uint8_t *buf;
    int64_t n;

    if (cpr_binding_commit(w->desc, vm, w->path, errp) < 0) {
        w->failed = true;
        return -1;
    }
    buf = cpr_vmdesc_encode(w->desc, &len);
    if (!buf || len > CPR_VMDESC_MAX) {
        cpr_error(errp, w->path, buf ? "VM description too large" :
                  "out of memory");
        free(buf);
        w->failed = true;
        return -1;
    }
    iov = (struct iovec){ buf, len };
    n = store(w, w->len, &iov, 1, errp);
    free(buf);
    return n < 0 ? -1 : 0;
}

int cpr_writer_commit(CprWriter *w, char **errp)
{
    return cpr_writer_commit_vm(w, NULL, errp);
}

int cpr_writer_commit_vm(CprWriter *w, const CprVm *vm, char **errp)
{
    CprRecord rec = { 0 };

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    cpr_populator_stop(w->pop);
    rec.stream_len = w->len;
    if (append_desc(w, vm, errp) < 0) {
        return -1;
    }
    rec.payload_off = w->place.base;
    rec.payload_len = w->len;
    if (w->hash_streaming) {
        rec.payload_xxh3 = XXH3_64bits_digest(w->hash);
    } else if (cpr_persist_hash(w->p, rec.payload_off, rec.payload_len,
                                &rec.payload_xxh3, errp) < 0) {
        goto fail;
    }
    /* I6, then I3. */
    if (cpr_image_check_intact(&w->file, w->path, cpr_persist_size(w->p),
                               errp) < 0 ||
        cpr_persist_range(w->p, rec.payload_off, rec.payload_len, errp) < 0) {
        goto fail;
    }
    if (publish(w, &rec, errp) < 0) {
        return -1;
    }
    /*
     * The save is over: let a reader in now rather than after QEMU's
     * cleanup unmaps what may be gigabytes.  This writer stores nothing
     * more.
     */
    flock(w->file.fd, LOCK_UN);
    return 0;
fail:
    w->failed = true;
    return -1;
}

int cpr_writer_invalidate(CprWriter *w, char **errp)
{
    /* The old payload stays described, so the next save still avoids it
     * and an inspector can see what was invalidated. */
    CprRecord rec = {
        .flags = CPR_REC_FLAG_INVALIDATED,
        .payload_off = w->live.payload_off,
        .payload_len = w->live.payload_len,
        .payload_xxh3 = w->live.payload_xxh3,
        .stream_len = w->live.stream_len,
    };

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    return publish(w, &rec, errp);
}

void cpr_writer_abort(CprWriter *w)
{
    cpr_populator_stop(w->pop);
    w->finished = true;
}

void cpr_writer_close(CprWriter *w)
{
    if (!w) {
        return;
    }
    cpr_populator_free(w->pop);
    cpr_persist_unmap(w->p);
    cpr_image_close(&w->file);
    cpr_vmdesc_free(w->desc);
    cpr_metadata_free(&w->md);
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
