/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The commit's half of the page ledger (writer-internal.h): every page
 * of the payload that no store hashed whole is settled (C2, C3: a gap
 * zeroed or, in the bare zone, given blocks; a page written in parts
 * hashed from the image), and the payload's checksum is taken from the
 * page hashes (FORMAT.md, version 3).  The stores' half is ledger.c.
 */
#include "writer-internal.h"
#include "image-file.h"
#include "parallel.h"

/* The hash of @n (<= PAGE) zero bytes. */
static uint64_t zero_hash(uint64_t n)
{
    static const uint8_t zeros[PAGE];

    return n == PAGE ? cpr_csum_zero_page() : XXH3_64bits(zeros, n);
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
    uint64_t from = pg * PAGE, n = MIN(PAGE, len - from);
    uint64_t off = w->place.base + from;
    bool zero;

    switch (st) {
    case PG_HASHED:
        return 0;
    case PG_APPENDING:
        /* C7: the appended bytes are hashed; the rest is a gap (zeros
         * already in the bare zone, which pwrite() allocated whole). */
        if (n > w->carry_len) {
            off += w->carry_len;
            n -= w->carry_len;
            zero = cpr_space_is_bare(w, off);
            if ((!zero &&
                 cpr_persist_is_zero(w->p, off, n, &zero, errp) < 0) ||
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
        w->phash[pg] = zero_hash(n);
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

/* Whether page @pg is a gap of the bare zone: a hole, or zeros. */
static bool bare_gap(CprWriter *w, uint64_t pg)
{
    return atomic_load_explicit(&w->pstate[pg], memory_order_relaxed) ==
           PG_FRESH && cpr_space_is_bare(w, w->place.base + pg * PAGE);
}

/*
 * Pages [first, end) of the payload's @len bytes settled (settle_page);
 * the bare zone's gaps are zeros, and get their blocks in one call per
 * run, not a read each (mapped-ram leaves every zero page of the guest
 * out: most of a big idle VM).
 */
static int settle_pages(CprWriter *w, uint64_t first, uint64_t end,
                        uint64_t len, char **errp)
{
    uint64_t gap = first, ngap = 0;

    for (uint64_t pg = first; pg <= end; pg++) {
        if (pg < end && bare_gap(w, pg)) {
            gap = ngap ? gap : pg;
            ngap++;
            w->phash[pg] = zero_hash(MIN(PAGE, len - pg * PAGE));
            continue;
        }
        if (ngap && cpr_persist_fill(w->p, w->place.base + gap * PAGE,
                                     ngap * PAGE, errp) < 0) {
            return -1;
        }
        ngap = 0;
        if (pg < end &&
            atomic_load_explicit(&w->pstate[pg], memory_order_relaxed) !=
            PG_HASHED && settle_page(w, pg, len, errp) < 0) {
            return -1;
        }
    }
    return 0;
}

static int settle_claim(void *ctx, uint64_t c, void *scratch, char **errp)
{
    Settle *s = ctx;

    (void)scratch;
    return settle_pages(s->w, c * CLAIM, MIN((c + 1) * CLAIM, s->npages),
                        s->len, errp);
}

/*
 * FORMAT.md, version 3: the checksum of payload [0, len), from the page
 * hashes the stores left and those settle_page() takes.  Write lock held.
 */
int cpr_ledger_checksum(CprWriter *w, uint64_t len, uint64_t *csum, char **errp)
{
    uint64_t npages = (len + PAGE - 1) / PAGE;

    if (len < PARALLEL_MIN) {
        /* A device-state save: a few pages, on this thread. */
        if (settle_pages(w, 0, npages, len, errp) < 0) {
            cpr_image_error(&w->file, errp, "cannot read the payload back");
            return -1;
        }
    } else {
        /* Not for small saves: this reads a file in /sys.  Pages the
         * stores hashed cost a glance each. */
        Settle s = { .w = w, .len = len, .npages = npages };

        if (cpr_parallel_for((npages + CLAIM - 1) / CLAIM,
                             len / (PARALLEL_MIN / 2), 0, settle_claim, &s,
                             &w->file, errp) < 0) {
            cpr_image_error(&w->file, errp, "cannot read the payload back");
            return -1;
        }
    }
    /* The zone's gaps have blocks now; the rest of it goes or gets some. */
    if (cpr_space_settle(w, len, errp) < 0) {
        return -1;
    }
    if (cpr_csum_tree(w->phash, npages, csum) < 0) {
        cpr_image_error(&w->file, errp, "out of memory");
        return -1;
    }
    return 0;
}
