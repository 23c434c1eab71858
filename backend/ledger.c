/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stores of a save and its page ledger (writer-internal.h): each
 * stream page's state and hash as stored (C2, C3, C7), and the stream
 * length (C4).  The commit settles the rest and takes the payload's
 * checksum from the ledger in ledger-settle.c.
 */
#include "writer-internal.h"
#include "atomic-max.h"
#include "image-file.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * I5: @len bytes at file offset @dst, through the mapping, or with
 * pwrite() in the bare zone (space.c), where the file has blocks only
 * where pwrite() put them and a store through the mapping could land in
 * a hole.
 */
static int store(CprWriter *w, uint64_t dst, const uint8_t *src, size_t len,
                 char **errp)
{
    if (cpr_space_is_bare(w, dst + len - (len > 0))) {
        size_t below = dst < w->bare ? w->bare - dst : 0;

        if (below && cpr_persist_store(w->p, dst, src, below, errp) < 0) {
            return -1;
        }
        return cpr_persist_write(w->p, dst + below, src + below, len - below,
                                 errp);
    }
    return cpr_persist_store(w->p, dst, src, len, errp);
}

/* Store the next @len source bytes at stream offset @off. */
static int put(CprWriter *w, Src *s, uint64_t off, uint64_t len,
               char **errp)
{
    uint64_t dst = w->place.base + off;

    while (len) {
        const uint8_t *ptr;
        size_t run = src_run(s, &ptr), n = MIN(run, len);

        if (store(w, dst, ptr, n, errp) < 0) {
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
        size_t run = src_run(s, &ptr), n = MIN(run, len);

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

/*
 * C2 in the bare zone: whole pages from as many source elements as hold
 * whole pages (multifd hands one element per page), up to RUN bytes, in
 * one pwritev(), each page hashed after.  How many pages; 0 on failure.
 */
static uint64_t write_run(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                          char **errp)
{
    struct iovec v[RUN / PAGE];
    uint64_t n = 0, max = MIN(end - off, RUN) / PAGE, pg = off / PAGE;
    int cnt = 0;

    while (n < max) {
        const uint8_t *ptr;
        uint64_t k = MIN(src_run(s, &ptr) / PAGE, max - n);

        if (!k) {
            break;
        }
        v[cnt++] = (struct iovec){ (void *)ptr, k * PAGE };
        s->at += k * PAGE;
        n += k;
    }
    if (cpr_persist_writev(w->p, w->place.base + off, v, cnt, errp) < 0) {
        return 0;
    }
    for (int i = 0; i < cnt; i++) {
        for (uint64_t k = 0; k < v[i].iov_len / PAGE; k++) {
            hashed(w, pg++, XXH3_64bits((uint8_t *)v[i].iov_base + k * PAGE,
                                        PAGE));
        }
    }
    return n;
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

        if (avail >= PAGE && cpr_space_is_bare(w, w->place.base + off)) {
            if ((n = write_run(w, s, off, end, errp)) == 0) {
                return -1;
            }
        } else if (avail >= PAGE) {
            /* Straight from one element: a run of pages. */
            n = MIN(MIN(avail, end - off), RUN) / PAGE;
            if (store(w, w->place.base + off, ptr, n * PAGE, errp) < 0) {
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
            if (store(w, w->place.base + off, bounce, n * PAGE,
                      errp) < 0) {
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
 * reach), so that whatever no store writes reads as zeros, and no later
 * store has to know what is stale; on the append frontier (C7), only
 * what the appends have not written yet.
 */
static int put_part(CprWriter *w, Src *s, uint64_t off, uint64_t end,
                    uint8_t prev, char **errp)
{
    uint64_t pg = off / PAGE, from = pg * PAGE;
    uint64_t to = MIN(from + PAGE, w->reach), done = from;
    int ret = 0;

    if (prev == PG_APPENDING) {
        done = from + w->carry_len;
    }
    /* In the bare zone, what no store wrote is a hole or zeros already
     * (and a store through the mapping there could land in a hole). */
    if ((prev == PG_FRESH || prev == PG_APPENDING) &&
        !cpr_space_is_bare(w, w->place.base + from)) {
        if (off > done) {
            ret = cpr_persist_zero(w->p, w->place.base + done, off - done,
                                   errp);
        }
        if (ret == 0 && to > MAX(end, done)) {
            uint64_t z = MAX(end, done);

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
    if (store(w, w->place.base + off, data, n, errp) < 0) {
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

/* @iov at stream offset @off, inside the reach (read lock held); @append:
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
            uint64_t e = MIN(end, next);

            if ((append ? append_part(w, &s, off, e, errp) :
                 put_partial(w, &s, off, e, errp)) < 0) {
                return -1;
            }
            off = e;
        }
    }
    return 0;
}

/* The mapping populated for file range [from, end), and ahead of it,
 * but not in the bare zone: pwrite() needs no page tables there, and a
 * populated hole would be a page allocated and zeroed for nothing. */
static void populate(CprWriter *w, uint64_t from, uint64_t end)
{
    uint64_t ahead = cpr_space_ahead(w);

    if (w->bare) {
        if (from >= w->bare) {
            return;
        }
        end = MIN(end, w->bare);
        ahead = MIN(ahead, w->bare - end);
    }
    cpr_populator_need(w->pop, from, end, ahead);
}

/*
 * Store @iov at stream offset @off: one reservation for the whole vector.
 * Under the read lock (C1), or with @exclusive, under the write lock the
 * caller holds (the commit's VM description).
 */
int64_t cpr_ledger_store(CprWriter *w, uint64_t off, const struct iovec *iov,
                     int iovcnt, bool append, bool exclusive, char **errp)
{
    int64_t total = iov_total(iov, iovcnt);
    char *err = NULL;
    uint64_t end;
    int ret = 0;

    if (cpr_writer_check_usable(w, errp) < 0) {
        return -1;
    }
    if (total < 0 || off > MAX_STREAM - (uint64_t)total) {
        cpr_image_error(&w->file, &err, "stream too large");
        cpr_writer_fail(w, err, errp);
        return -1;
    }
    end = off + (uint64_t)total;
    if (exclusive) {
        ret = end > w->reach ? cpr_space_reserve(w, end, &err) : 0;
    } else {
        pthread_rwlock_rdlock(&w->map);
    }
    while (!exclusive && end > w->reach) {
        /* C1: growth and relocation exclude every store. */
        pthread_rwlock_unlock(&w->map);
        pthread_rwlock_wrlock(&w->map);
        if (end <= w->reach) {
            ret = 0;
        } else if (cpr_first_failure_failed(&w->failure)) {
            ret = cpr_writer_check_usable(w, &err);
        } else {
            ret = cpr_space_reserve(w, end, &err);
        }
        if (ret < 0) {
            /* Before another thread can try growing again (C5). */
            cpr_writer_fail(w, err, errp);
        }
        pthread_rwlock_unlock(&w->map);
        if (ret < 0) {
            return -1;
        }
        pthread_rwlock_rdlock(&w->map);
    }
    if (ret == 0) {
        populate(w, w->place.base + off, w->place.base + end);
        ret = put_stream(w, off, end, iov, iovcnt, append, &err);
    }
    if (ret == 0) {
        cpr_atomic_max(&w->len, end);     /* C4 */
    }
    if (!exclusive) {
        pthread_rwlock_unlock(&w->map);
    }
    if (ret < 0) {
        cpr_writer_fail(w, err, errp);
        return -1;
    }
    return total;
}

int64_t cpr_writer_appendv(CprWriter *w, const struct iovec *iov, int iovcnt,
                           char **errp)
{
    int64_t n = cpr_ledger_store(w, w->pos, iov, iovcnt, true, false, errp);

    if (n > 0) {
        w->pos += (uint64_t)n;
    }
    return n;
}

int64_t cpr_writer_pwritev(CprWriter *w, uint64_t off,
                           const struct iovec *iov, int iovcnt, char **errp)
{
    return cpr_ledger_store(w, off, iov, iovcnt, false, false, errp);
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
