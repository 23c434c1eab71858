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
 *      committed, nor written to by the commit: cpr_writer_commit()
 *      checks intact() (size, superblock, both record slots) before it
 *      stores the VM description and again before the record.
 *
 * Concurrency (QEMU's multifd threads call out_pwritev at once, on
 * disjoint ranges, and alongside out_writev; transport-plugin.h):
 *
 *  C1  The mapping, the placement and the page arrays change only under
 *      the write lock of w->map (reserve: growth, remap, relocation,
 *      allocation; open; commit), and every store runs under its read
 *      lock, inside the room [0, w->room) that reserve() prepared: a
 *      store never sees the mapping move, and growth waits for the
 *      stores in flight.  The populator's thread is stopped, and its
 *      cursor reset, only under the write lock.
 *  C2  Each stream page's checksum state (FORMAT.md, version 3) is owned
 *      by the store that covers all of it: it hashes its bytes as it
 *      stores them and publishes the hash with the page's state.  A
 *      store that covers part of a page takes the page's lock bit, so
 *      that stores sharing a page zero only bytes nobody wrote; such
 *      pages are hashed from the media at commit.
 *  C3  Gaps are zeroed at commit, not when the stream jumps over them:
 *      a page no store touched is checked and zeroed only if it is not
 *      zero already (mapped-ram leaves zero pages out, and a reused
 *      image mostly holds zeros there), so no store races a zero-fill.
 *  C4  The stream length is the largest end stored (atomic maximum); the
 *      append position belongs to out_writev, which QEMU never calls
 *      from two threads at once.
 *  C5  The first failure wins: it marks the save failed (atomically) and
 *      keeps its message, and every later call returns that message, so
 *      whichever thread QEMU hears from first names the real cause.
 *  C6  Commit, abort and close run when no store does (the ABI: QEMU
 *      joins its threads first); commit still takes the write lock, so
 *      it sees every store's bytes and page hashes.
 *  C7  The append frontier (the page that holds the append position,
 *      while only appends wrote it) is hashed as the appends fill it, by
 *      out_writev's thread alone (w->carry, under that page's lock bit):
 *      a stream of appends reads nothing back and zeroes nothing.  Any
 *      other store into that page first zeroes what the appends have not
 *      written, and makes it an ordinary partly written page.
 *
 * Everything read from the file is checked before it steers anything: a
 * live record whose payload is not in the file (or is sparse) protects
 * nothing and places nothing (open_live).
 *
 * The payload is the stream, then the VM description (FORMAT.md,
 * binding.h), collected at open and completed at commit, when
 * append_desc() stores it after the stream's last byte through the same
 * store() as the stream: I1, I3, I5 and C2 cover it unchanged, and the
 * record says where the stream ends.
 */
#define XXH_STATIC_LINKING_ONLY     /* XXH3_state_t on the stack */
#include "writer.h"
#include "binding.h"
#include "errmsg.h"
#include "format.h"
#include "hash.h"
#include "image-file.h"
#include "metadata.h"
#include "parallel.h"
#include "persist.h"
#include "placement.h"
#include "populate.h"
#include "reader.h"
#include "vmdesc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

#define PAGE CPR_CSUM_PAGE
#define NO_PAGE UINT64_MAX

/* Stream page states (C2, C3). */
enum {
    PG_FRESH = 0,       /* no store touched it in this save */
    PG_HASHED = 1,      /* last written whole by one store: hash[] is its */
    PG_MEDIA = 2,       /* written in parts, the rest zeroed: hash at commit */
    PG_APPENDING = 3,   /* the append frontier (C7): carry hashes its bytes */
    PG_LOCK = 0x80,     /* a partial store is at work on it */
};

/* Settling the pages of a payload this large takes other threads. */
#define PARALLEL_MIN (64ull << 20)

struct CprWriter {
    CprImage file;              /* exclusive lock, path; header as opened */
    CprPersist *p;
    CprPopulator *pop;
    CprMetadata md;             /* collected at open, off the pause */
    CprVmdesc *desc;            /* likewise; completed at commit */
    CprHost host;               /* warnings of the commit; zero: none */
    uint64_t gen;               /* generation this save will commit */
    CprRecord live;             /* payload fields; length 0: nothing live */

    /* C1: written under the write lock, read under either. */
    pthread_rwlock_t map;
    CprPlacement place;
    uint64_t allocated;         /* [place.base, allocated) has no holes */
    uint64_t old_end;           /* the file's size before this save */
    uint64_t room;              /* stream bytes a store may touch */
    uint64_t want;              /* the most stream bytes asked for so far */
    _Atomic uint8_t *pstate;    /* per stream page, PG_* */
    uint64_t *phash;            /* per stream page, XXH3 (PG_HASHED) */
    uint64_t npages;            /* pages both arrays cover */

    _Atomic uint64_t len;       /* C4: stream length */
    uint64_t pos;               /* C4: append position */
    /* C7: the append frontier, under its page's lock bit. */
    uint64_t carry_page;        /* NO_PAGE: none */
    uint64_t carry_len;
    XXH3_state_t *carry;
    atomic_bool failed;         /* C5 */
    pthread_mutex_t err_lock;
    char *first_error;          /* C5, under err_lock */
    atomic_bool finished;       /* committed or aborted */
};

/* C5: remember the first failure; hand its message to the caller, or
 * the first one if another thread failed before. */
static void fail(CprWriter *w, char *err, char **errp)
{
    pthread_mutex_lock(&w->err_lock);
    if (!w->first_error) {
        w->first_error = err ? strdup(err) : NULL;
    } else if (errp && !*errp) {
        free(err);
        err = strdup(w->first_error);
    }
    atomic_store(&w->failed, true);
    pthread_mutex_unlock(&w->err_lock);
    if (errp && !*errp) {
        *errp = err;
    } else {
        free(err);
    }
}

/* C5, for a failure already in *errp. */
static void note_failure(CprWriter *w, char **errp)
{
    pthread_mutex_lock(&w->err_lock);
    if (!w->first_error && errp && *errp) {
        w->first_error = strdup(*errp);
    }
    atomic_store(&w->failed, true);
    pthread_mutex_unlock(&w->err_lock);
}

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
        cpr_image_error(&w->file, errp, "generation counter exhausted");
        return -1;
    }
    w->gen = rec->generation + 1;
    /* A payload that is not all there cannot load either; nor one whose
     * holes are not zeros. */
    if (cpr_image_payload_present(&w->file, rec, &why) &&
        cpr_reader_payload_verifies(&w->file, rec)) {
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

static uint64_t stream_len(CprWriter *w)
{
    return atomic_load(&w->len);
}

static int update_room(CprWriter *w, char **errp);

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
    pthread_rwlockattr_t attr;

    if (!w) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    w->file.fd = -1;
    /* Growth must not starve behind a stream of stores (C1). */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&w->map, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&w->err_lock, NULL);
    w->carry_page = NO_PAGE;
    if (cpr_image_open_write(path, &w->file, errp) < 0) {
        goto fail;
    }
    cpr_metadata_collect(&w->md, host ? host->qemu_version : NULL);
    if (!(w->pop = cpr_populator_new()) ||
        !(w->carry = XXH3_createState()) ||
        (vm && vm->argv &&
         cpr_metadata_set_argv(&w->md, vm->argv, vm->argv_len) < 0)) {
        cpr_image_error(&w->file, errp, "out of memory");
        goto fail;
    }
    if (open_live(w, errp) < 0) {
        goto fail;
    }
    if (host) {
        w->host = *host;
    }
    w->desc = cpr_binding_open(host, &w->md, vm, &w->file, errp);
    if (!w->desc) {
        goto fail;
    }
    w->place = cpr_place_new(w->live.payload_off, w->live.payload_len);
    w->allocated = w->place.base;
    w->p = cpr_persist_map(&w->file, CPR_INITIAL_SIZE, errp);
    if (!w->p) {
        goto fail;
    }
    if (settle_slot(w, errp) < 0) {
        goto fail;
    }
    w->old_end = cpr_persist_size(w->p);
    cpr_populator_reset(w->pop, w->p, w->place.base);
    if (update_room(w, errp) < 0) {
        goto fail;
    }
    return w;
fail:
    cpr_writer_close(w);
    return NULL;
}

/* How far ahead of the stream to populate: as much as it has grown so
 * far (bounded), so a big stream takes few calls and a small one does not
 * pay for megabytes it never writes. */
static uint64_t ahead(CprWriter *w)
{
    return min_u64(max_u64(stream_len(w), CPR_POPULATE_MIN),
                   CPR_POPULATE_AHEAD);
}

/* The room (and the page arrays, 9 bytes per page) grows with what the
 * stream asks for, doubling, not with the file: a small save into a big
 * image made for full-RAM saves costs no more memory than its stream. */
#define ROOM_MIN (64ull << 20)

/*
 * C1: the page arrays cover the room, and the room is what is mapped,
 * allocated (I5) and below the limit (I1).  Write lock held.
 */
static int update_room(CprWriter *w, char **errp)
{
    uint64_t size = cpr_persist_size(w->p), base = w->place.base;
    uint64_t safe = size, room, n;

    /* Where the file was sparse, only what ensure_room() allocated. */
    if (w->file.sparse && w->allocated < w->old_end) {
        safe = min_u64(safe, w->allocated);
    }
    room = safe > base ? safe - base : 0;
    /* Whole pages: a store's first touch zeroes the rest of its page
     * (put_part), and a page cut by the room would keep stale bytes. */
    room = min_u64(room, w->place.limit);
    room = min_u64(room, max_u64(2 * w->want, ROOM_MIN)) / PAGE * PAGE;
    n = (room + PAGE - 1) / PAGE;
    if (n > w->npages) {
        _Atomic uint8_t *st = realloc((void *)w->pstate, n);
        uint64_t *h;

        if (st) {
            w->pstate = st;
        }
        h = st ? realloc(w->phash, n * sizeof(*h)) : NULL;
        if (!h) {
            cpr_image_error(&w->file, errp, "out of memory");
            return -1;
        }
        w->phash = h;
        memset((void *)(w->pstate + w->npages), 0, n - w->npages);
        memset(w->phash + w->npages, 0, (n - w->npages) * sizeof(*h));
        w->npages = n;
    }
    w->room = room;
    return 0;
}

/*
 * I5: the file holds [0, @end) with blocks, and the mapping covers it.
 * What this save grows is allocated as it grows; holes can only be where
 * the file was before, and only if it was sparse then (punched by
 * someone, or copied without its holes filled): looked for in big steps.
 * Write lock held.
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
        /* A remap loses the page tables; need() maps what is stored. */
        cpr_populator_reset(w->pop, w->p, w->place.base);
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


/* I1: the space below the live payload is exhausted; move above it.
 * Write lock held: no store is in flight, so [0, len) is all there; its
 * last page moves whole, with the zeros put_part() stored.  @end is
 * page-aligned. */
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
    return cpr_persist_move(w->p, high, low,
                            cpr_align_up(stream_len(w), PAGE), errp);
}

/* Room for stream bytes [0, end), relocated (I1) and allocated (I5).
 * Write lock held. */
static int reserve(CprWriter *w, uint64_t end, char **errp)
{
    uint64_t pages;

    if (end > MAX_STREAM) {
        cpr_image_error(&w->file, errp, "stream too large");
        return -1;
    }
    pages = cpr_align_up(end, PAGE);    /* the room is whole pages */
    w->want = max_u64(w->want, pages);
    if (pages > w->place.limit && relocate(w, pages, errp) < 0) {
        return -1;
    }
    if (ensure_room(w, w->place.base + pages, errp) < 0 ||
        update_room(w, errp) < 0) {
        return -1;
    }
    if (end > w->room) {
        cpr_image_error(&w->file, errp, "no room for %llu stream bytes "
                        "(internal error)", (unsigned long long)end);
        return -1;
    }
    return 0;
}

static int check_usable(CprWriter *w, char **errp)
{
    if (atomic_load(&w->finished)) {
        cpr_image_error(&w->file, errp, "save already committed or aborted");
        return -1;
    }
    if (atomic_load(&w->failed)) {
        pthread_mutex_lock(&w->err_lock);
        if (errp && !*errp && w->first_error) {
            *errp = strdup(w->first_error);
        }
        pthread_mutex_unlock(&w->err_lock);
        cpr_image_error(&w->file, errp, "an earlier write to this save failed");
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
    uint64_t now;
    int ret;

    if (w->file.sparse && !w->live.payload_len) {
        expect = min_u64(expect, CPR_INITIAL_SIZE - base);
    }
    if (check_usable(w, errp) < 0) {
        return -1;
    }
    pthread_rwlock_wrlock(&w->map);
    w->want = max_u64(w->want, expect);
    ret = ensure_room(w, base + expect, errp);
    if (ret == 0) {
        ret = update_room(w, errp);
    }
    if (ret == 0) {
        /*
         * On tmpfs and DAX, populating costs page-table work only: do as
         * much as CPR_POPULATE_OPEN_MS allow now, while the VM still runs
         * (QEMU stops it after out_open), rather than inside the pause.
         * On a disk filesystem it may read the old payload from the
         * device: only a first part now.  The rest on the other core
         * while the stream is written.
         */
        bool cheap = cpr_image_populate_is_cheap(&w->file);
        int64_t until = cpr_monotonic_ms() + CPR_POPULATE_OPEN_MS;
        uint64_t at = 0;

        now = cheap ? expect : min_u64(expect, CPR_POPULATE_OPEN);
        cpr_persist_populate(w->p, CPR_SLOT_OFFSET(cpr_slot_for(w->gen)),
                             CPR_BLOCK_SIZE);
        do {
            uint64_t step = min_u64(now - at, CPR_POPULATE_OPEN);

            cpr_populator_need(w->pop, base + at, base + at + step, 0);
            at += step;
        } while (at < now && cpr_monotonic_ms() < until);
        cpr_populator_background(w->pop, base + expect);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
}

int cpr_writer_populate_size(CprWriter *w, uint64_t size, char **errp)
{
    int ret = -1;

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    if (size > MAX_STREAM) {
        cpr_image_error(&w->file, errp, "size too large");
        return -1;
    }
    /* Exactly as asked (in 2 MiB steps), unlike a growing stream. */
    size = cpr_align_up(size, CPR_ALIGN);
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    if (cpr_persist_grow(w->p, size, size, errp) == 0 &&
        cpr_persist_allocate(w->p, 0, cpr_persist_size(w->p), errp) == 0) {
        w->allocated = cpr_persist_size(w->p);
        cpr_populator_reset(w->pop, w->p, 0);
        cpr_populator_need(w->pop, 0, cpr_persist_size(w->p), 0);
        ret = update_room(w, errp);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
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

/* Where a store is in its source vector. */
typedef struct Src {
    const struct iovec *iov;
    int iovcnt;
    int i;                      /* element */
    size_t at;                  /* bytes of it consumed */
} Src;

/* Contiguous source bytes at the cursor (skipping empty elements). */
static size_t src_run(Src *s, const uint8_t **ptr)
{
    while (s->i < s->iovcnt && s->at == s->iov[s->i].iov_len) {
        s->i++;
        s->at = 0;
    }
    if (s->i == s->iovcnt) {
        return 0;
    }
    *ptr = (const uint8_t *)s->iov[s->i].iov_base + s->at;
    return s->iov[s->i].iov_len - s->at;
}

/* Store the next @len source bytes at stream offset @off. */
static int put(CprWriter *w, Src *s, uint64_t off, uint64_t len,
               char **errp)
{
    uint64_t dst = w->place.base + off;

    while (len) {
        const uint8_t *ptr;
        size_t n = min_u64(src_run(s, &ptr), len);

        if (cpr_persist_store(w->p, dst, ptr, n, errp) < 0) {
            return -1;
        }
        s->at += n;
        dst += n;
        len -= n;
    }
    return 0;
}

/* Copy the next @len source bytes to @buf. */
static void gather(Src *s, uint8_t *buf, uint64_t len)
{
    while (len) {
        const uint8_t *ptr;
        size_t n = min_u64(src_run(s, &ptr), len);

        memcpy(buf, ptr, n);
        s->at += n;
        buf += n;
        len -= n;
    }
}

/* Whole pages a store covers, in runs this long: the source is hashed
 * while it is still in the cache it was copied through. */
#define RUN (64u << 10)
/* Pages gathered from several source elements, this many at a time. */
#define BOUNCE (4 * PAGE)

static void hashed(CprWriter *w, uint64_t pg, uint64_t h)
{
    w->phash[pg] = h;
    atomic_store_explicit(&w->pstate[pg], PG_HASHED, memory_order_release);
}

/* C2: whole pages [off, end) (page-aligned), each hashed as stored. */
static int put_pages(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                     char **errp)
{
    _Alignas(64) uint8_t bounce[BOUNCE];

    while (off < end) {
        const uint8_t *ptr;
        size_t avail = src_run(s, &ptr);
        uint64_t pg = off / PAGE, n = 0;

        if (avail >= PAGE) {
            /* Straight from one element: a run of pages. */
            n = min_u64(min_u64(avail, end - off), RUN) / PAGE;
            if (cpr_persist_store(w->p, w->place.base + off, ptr, n * PAGE,
                                  errp) < 0) {
                return -1;
            }
            for (uint64_t k = 0; k < n; k++) {
                hashed(w, pg + k, XXH3_64bits(ptr + k * PAGE, PAGE));
            }
            s->at += n * PAGE;
        } else {
            /* Pages spread over several elements (QEMU's page headers
             * between pages): gathered, hashed, stored in one piece. */
            do {
                gather(s, bounce + n * PAGE, PAGE);
                hashed(w, pg + n, XXH3_64bits(bounce + n * PAGE, PAGE));
                n++;
            } while (n < BOUNCE / PAGE && off + n * PAGE < end &&
                     src_run(s, &ptr) < PAGE);
            if (cpr_persist_store(w->p, w->place.base + off, bounce,
                                  n * PAGE, errp) < 0) {
                return -1;
            }
        }
        off += n * PAGE;
    }
    return 0;
}

static uint8_t lock_page(CprWriter *w, uint64_t pg)
{
    uint8_t cur = atomic_load_explicit(&w->pstate[pg], memory_order_relaxed);

    for (;;) {
        cur &= (uint8_t)~PG_LOCK;
        if (atomic_compare_exchange_weak_explicit(&w->pstate[pg], &cur,
                                                  cur | PG_LOCK,
                                                  memory_order_acquire,
                                                  memory_order_relaxed)) {
            return cur;
        }
        /* Held by another store on this page: a few hundred ns at most. */
        sched_yield();
    }
}

static void unlock_page(CprWriter *w, uint64_t pg, uint8_t state)
{
    atomic_store_explicit(&w->pstate[pg], state, memory_order_release);
}

/*
 * C2, C3: part [off, end) of one page, page lock held, the page in state
 * @prev.  The first store into a page zeroes the rest of it (within the
 * room), so that whatever no store writes reads as zeros, and no later
 * store has to know what is stale; on the append frontier (C7), only
 * what the appends have not written yet.
 */
static int put_part(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                    uint8_t prev, char **errp)
{
    uint64_t pg = off / PAGE, from = pg * PAGE;
    uint64_t to = min_u64(from + PAGE, w->room), done = from;
    int ret = 0;

    if (prev == PG_APPENDING) {
        done = from + w->carry_len;
    }
    if (prev == PG_FRESH || prev == PG_APPENDING) {
        if (off > done) {
            ret = cpr_persist_zero(w->p, w->place.base + done, off - done,
                                   errp);
        }
        if (ret == 0 && to > max_u64(end, done)) {
            uint64_t z = max_u64(end, done);

            ret = cpr_persist_zero(w->p, w->place.base + z, to - z, errp);
        }
    }
    if (ret == 0) {
        ret = put(w, s, off, end - off, errp);
    }
    /* Even after a failure: the save will not commit. */
    unlock_page(w, pg, PG_MEDIA);
    return ret;
}

static int put_partial(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                       char **errp)
{
    return put_part(w, s, off, end, lock_page(w, off / PAGE), errp);
}

/*
 * C7: an append into the page at the append frontier, which only appends
 * have written (bytes [0, carry_len) of it): their hash grows with them,
 * so the page is whole and hashed when the appends fill it, and nothing
 * beyond the append position needs zeroing yet.  A page the appends
 * start anew (FRESH, from its first byte) becomes the frontier.
 */
static int append_part(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                       char **errp)
{
    _Alignas(64) uint8_t buf[PAGE];
    uint64_t pg = off / PAGE, from = pg * PAGE, n = end - off;
    uint8_t prev = lock_page(w, pg);
    bool extend = prev == PG_APPENDING && w->carry_page == pg &&
                  w->carry_len == off - from;
    bool start = prev == PG_FRESH && off == from;

    const uint8_t *data;

    if (!extend && !start) {
        return put_part(w, s, off, end, prev, errp);
    }
    /* What is hashed is what is stored: from one buffer. */
    if (src_run(s, &data) >= n) {
        s->at += n;
    } else {
        gather(s, buf, n);
        data = buf;
    }
    if (cpr_persist_store(w->p, w->place.base + off, data, n, errp) < 0) {
        unlock_page(w, pg, PG_MEDIA);
        return -1;
    }
    if (start) {
        XXH3_64bits_reset(w->carry);
        w->carry_page = pg;
        w->carry_len = 0;
    }
    XXH3_64bits_update(w->carry, data, n);
    w->carry_len += n;
    if (w->carry_len == PAGE) {
        w->phash[pg] = XXH3_64bits_digest(w->carry);
        w->carry_page = NO_PAGE;
        unlock_page(w, pg, PG_HASHED);
    } else {
        unlock_page(w, pg, PG_APPENDING);
    }
    return 0;
}

/* @iov at stream offset @off, inside the room (read lock held); @append:
 * at the append position, from out_writev's thread. */
static int put_stream(CprWriter *w, uint64_t off, uint64_t end,
                      const struct iovec *iov, int iovcnt, bool append,
                      char **errp)
{
    Src s = { iov, iovcnt, 0, 0 };

    while (off < end) {
        uint64_t next = (off / PAGE + 1) * PAGE;

        if (off % PAGE == 0 && end >= next) {
            uint64_t whole = end - end % PAGE;

            if (put_pages(w, &s, off, whole, errp) < 0) {
                return -1;
            }
            off = whole;
        } else {
            uint64_t e = min_u64(end, next);

            if ((append ? append_part(w, &s, off, e, errp) :
                 put_partial(w, &s, off, e, errp)) < 0) {
                return -1;
            }
            off = e;
        }
    }
    return 0;
}

/* C4 */
static void extend(CprWriter *w, uint64_t end)
{
    uint64_t cur = atomic_load(&w->len);

    while (cur < end && !atomic_compare_exchange_weak(&w->len, &cur, end)) {
    }
}

/*
 * Store @iov at stream offset @off: one reservation for the whole vector.
 * Under the read lock (C1), or with @exclusive, under the write lock the
 * caller holds (the commit's VM description).
 */
static int64_t store(CprWriter *w, uint64_t off, const struct iovec *iov,
                     int iovcnt, bool append, bool exclusive, char **errp)
{
    int64_t total = iov_total(iov, iovcnt);
    char *err = NULL;
    uint64_t end;
    int ret = 0;

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    if (total < 0 || off > MAX_STREAM - (uint64_t)total) {
        cpr_image_error(&w->file, &err, "stream too large");
        fail(w, err, errp);
        return -1;
    }
    end = off + (uint64_t)total;
    if (exclusive) {
        ret = end > w->room ? reserve(w, end, &err) : 0;
    } else {
        pthread_rwlock_rdlock(&w->map);
    }
    while (!exclusive && end > w->room) {
        /* C1: growth and relocation exclude every store. */
        pthread_rwlock_unlock(&w->map);
        pthread_rwlock_wrlock(&w->map);
        ret = end <= w->room ? 0 :
              atomic_load(&w->failed) ? check_usable(w, &err) :
              reserve(w, end, &err);
        if (ret < 0) {
            /* Before another thread can try growing again (C5). */
            fail(w, err, errp);
        }
        pthread_rwlock_unlock(&w->map);
        if (ret < 0) {
            return -1;
        }
        pthread_rwlock_rdlock(&w->map);
    }
    if (ret == 0) {
        cpr_populator_need(w->pop, w->place.base + off, w->place.base + end,
                           ahead(w));
        ret = put_stream(w, off, end, iov, iovcnt, append, &err);
    }
    if (ret == 0) {
        extend(w, end);
    }
    if (!exclusive) {
        pthread_rwlock_unlock(&w->map);
    }
    if (ret < 0) {
        fail(w, err, errp);
        return -1;
    }
    return total;
}

int64_t cpr_writer_appendv(CprWriter *w, const struct iovec *iov, int iovcnt,
                           char **errp)
{
    int64_t n = store(w, w->pos, iov, iovcnt, true, false, errp);

    if (n > 0) {
        w->pos += (uint64_t)n;
    }
    return n;
}

int64_t cpr_writer_pwritev(CprWriter *w, uint64_t off,
                           const struct iovec *iov, int iovcnt, char **errp)
{
    return store(w, off, iov, iovcnt, false, false, errp);
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

/* I2, I4: @rec into the slot the live record does not use, durably;
 * as a record of the current version unless @rec names its own. */
static int publish(CprWriter *w, CprRecord *rec, char **errp)
{
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));
    const uint8_t *before = w->file.header + slot;
    uint8_t buf[CPR_REC_SIZE];

    if (!rec->version) {
        rec->version = CPR_REC_VERSION;
    }
    rec->generation = w->gen;
    rec->ctime_ns = cpr_realtime_ns();
    memcpy(rec->qemu_version, w->md.qemu_version, sizeof(rec->qemu_version));
    memcpy(rec->kernel_release, w->md.kernel_release,
           sizeof(rec->kernel_release));
    rec->cmdline_fp = w->md.cmdline_fp;
    cpr_record_encode(rec, buf);
    if (cpr_persist_store(w->p, slot, buf, sizeof(buf), errp) == 0 &&
        cpr_persist_range(w->p, slot, sizeof(buf), errp) == 0) {
        atomic_store(&w->finished, true);
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
    note_failure(w, errp);
    return -1;
}

/*
 * The VM description goes right after the stream, like more stream: the
 * payload checksum covers it, and placement and growth treat it alike.
 * Write lock held.
 */
static int append_desc(CprWriter *w, const CprVm *vm, char **errp)
{
    struct iovec iov;
    size_t len = 0;
    uint8_t *buf;
    int64_t n;

    if (cpr_binding_commit(w->desc, &w->host, vm, &w->file, errp) < 0) {
        note_failure(w, errp);
        return -1;
    }
    buf = cpr_vmdesc_encode(w->desc, &len);
    if (!buf || len > CPR_VMDESC_MAX) {
        cpr_image_error(&w->file, errp, buf ? "VM description too large" :
                        "out of memory");
        free(buf);
        note_failure(w, errp);
        return -1;
    }
    iov = (struct iovec){ buf, len };
    /* After the last append, or after the last positional write. */
    n = store(w, stream_len(w), &iov, 1, stream_len(w) == w->pos, true,
              errp);
    free(buf);
    return n < 0 ? -1 : 0;
}

/*
 * C2, C3 at commit: the hash of every page of the payload's @len bytes
 * that no store hashed whole.  A page no store touched is a gap: zero
 * it, unless it is zero already.
 */
static int settle_page(CprWriter *w, uint64_t pg, uint64_t len, char **errp)
{
    static const uint8_t zeros[PAGE];
    uint8_t st = atomic_load_explicit(&w->pstate[pg], memory_order_acquire);
    uint64_t from = pg * PAGE, n = min_u64(PAGE, len - from);
    uint64_t off = w->place.base + from;
    bool zero;

    switch (st) {
    case PG_HASHED:
        return 0;
    case PG_APPENDING:
        /* C7: the appended bytes are hashed; the rest is a gap. */
        if (n > w->carry_len) {
            off += w->carry_len;
            n -= w->carry_len;
            if (cpr_persist_is_zero(w->p, off, n, &zero, errp) < 0 ||
                (!zero && cpr_persist_zero(w->p, off, n, errp) < 0)) {
                return -1;
            }
            XXH3_64bits_update(w->carry, zeros, n);
        }
        w->phash[pg] = XXH3_64bits_digest(w->carry);
        return 0;
    case PG_FRESH:
        if (cpr_persist_is_zero(w->p, off, n, &zero, errp) < 0 ||
            (!zero && cpr_persist_zero(w->p, off, n, errp) < 0)) {
            return -1;
        }
        w->phash[pg] = n == PAGE ? cpr_csum_zero_page() :
                       XXH3_64bits(zeros, n);
        return 0;
    default:
        return cpr_persist_hash(w->p, off, n, &w->phash[pg], errp);
    }
}

/* Pages are settled in claims of this many, by as many threads as the
 * work is worth (cpr_parallel_for: each takes the next claim). */
#define CLAIM 1024u

typedef struct Settle {
    CprWriter *w;
    uint64_t len, npages;
} Settle;

static int settle_claim(void *ctx, uint64_t c, void *scratch, char **errp)
{
    Settle *s = ctx;
    uint64_t end = min_u64((c + 1) * CLAIM, s->npages);

    (void)scratch;
    for (uint64_t pg = c * CLAIM; pg < end; pg++) {
        if (settle_page(s->w, pg, s->len, errp) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * FORMAT.md, version 3: the checksum of payload [0, len), from the page
 * hashes the stores left and those settle_page() takes.  Write lock held.
 */
static int checksum(CprWriter *w, uint64_t len, uint64_t *csum, char **errp)
{
    uint64_t npages = (len + PAGE - 1) / PAGE;
    uint64_t nblocks = (npages + CPR_CSUM_PAGES_PER_BLOCK - 1) /
                       CPR_CSUM_PAGES_PER_BLOCK;
    uint64_t few[16], *blocks = few;

    if (len < PARALLEL_MIN) {
        /* A device-state save: a few pages, on this thread. */
        for (uint64_t pg = 0; pg < npages; pg++) {
            if (atomic_load_explicit(&w->pstate[pg], memory_order_relaxed) !=
                PG_HASHED && settle_page(w, pg, len, errp) < 0) {
                cpr_image_error(&w->file, errp, "cannot read the payload back");
                return -1;
            }
        }
    } else {
        /* Not for small saves: this reads a file in /sys.  Pages the
         * stores hashed cost a glance each. */
        Settle s = { .w = w, .len = len, .npages = npages };

        if (cpr_parallel_for((npages + CLAIM - 1) / CLAIM,
                             len / (PARALLEL_MIN / 2), 0, settle_claim, &s,
                             cpr_image_path(&w->file), errp) < 0) {
            cpr_image_error(&w->file, errp, "cannot read the payload back");
            return -1;
        }
    }
    if (nblocks > sizeof(few) / sizeof(few[0]) &&
        !(blocks = malloc(nblocks * sizeof(*blocks)))) {
        cpr_image_error(&w->file, errp, "out of memory");
        return -1;
    }
    for (uint64_t k = 0; k < nblocks; k++) {
        uint64_t first = k * CPR_CSUM_PAGES_PER_BLOCK;

        blocks[k] = cpr_csum_list(w->phash + first,
                                  min_u64(CPR_CSUM_PAGES_PER_BLOCK,
                                          npages - first));
    }
    *csum = cpr_csum_list(blocks, nblocks);
    if (blocks != few) {
        free(blocks);
    }
    return 0;
}

/* I6.  Write lock held. */
static int intact(CprWriter *w, char **errp)
{
    if (cpr_image_check_intact(&w->file, cpr_persist_size(w->p), errp) < 0) {
        note_failure(w, errp);
        return -1;
    }
    return 0;
}

int cpr_writer_commit(CprWriter *w, char **errp)
{
    return cpr_writer_commit_vm(w, NULL, errp);
}

int cpr_writer_commit_vm(CprWriter *w, const CprVm *vm, char **errp)
{
    CprRecord rec = { 0 };
    int ret = -1;

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    /* C6: no store runs; the lock makes their bytes and hashes ours. */
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    rec.stream_len = stream_len(w);
    /* I6 before the commit stores a byte (the VM description, zeroed
     * gaps): not into a file another process rewrote. */
    if (intact(w, errp) == 0 && append_desc(w, vm, errp) == 0) {
        rec.payload_off = w->place.base;
        rec.payload_len = stream_len(w);
        /* C3, then I6 again (a change while hashing), then I3. */
        if (checksum(w, rec.payload_len, &rec.payload_xxh3, errp) < 0 ||
            intact(w, errp) < 0 ||
            cpr_persist_range(w->p, rec.payload_off, rec.payload_len,
                              errp) < 0) {
            note_failure(w, errp);
        } else {
            ret = publish(w, &rec, errp);
        }
    }
    pthread_rwlock_unlock(&w->map);
    if (ret == 0) {
        /*
         * The save is over: let a reader in now rather than after QEMU's
         * cleanup unmaps what may be gigabytes.  This writer stores
         * nothing more.
         */
        flock(w->file.fd, LOCK_UN);
    }
    return ret;
}

int cpr_writer_invalidate(CprWriter *w, char **errp)
{
    /* The old payload stays described, so the next save still avoids it
     * and an inspector can see what was invalidated; its version says
     * how its checksum was taken. */
    CprRecord rec = {
        .version = w->live.version,
        .flags = CPR_REC_FLAG_INVALIDATED,
        .payload_off = w->live.payload_off,
        .payload_len = w->live.payload_len,
        .payload_xxh3 = w->live.payload_xxh3,
        .stream_len = w->live.stream_len,
    };

    int ret = -1;

    if (check_usable(w, errp) < 0) {
        return -1;
    }
    /* As a commit does (C6, I6), though no store runs here. */
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    if (intact(w, errp) == 0) {
        ret = publish(w, &rec, errp);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
}

void cpr_writer_abort(CprWriter *w)
{
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    atomic_store(&w->finished, true);
    pthread_rwlock_unlock(&w->map);
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
    free((void *)w->pstate);
    free(w->phash);
    free(w->first_error);
    XXH3_freeState(w->carry);
    pthread_mutex_destroy(&w->err_lock);
    pthread_rwlock_destroy(&w->map);
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
    return cpr_image_path(&w->file);
}

int cpr_writer_reopen_rw(const CprWriter *w)
{
    return cpr_image_reopen_rw(&w->file);
}
