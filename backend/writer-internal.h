/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The writer's parts (writer.c says what each invariant is and where it
 * is kept): writer.c opens, commits and closes; space.c reserves, grows
 * and relocates the space a stream may reach (I1, I5, C1); ledger.c
 * stores and keeps the page ledger, the stream pages' states and hashes
 * (C2-C4, C7); ledger-settle.c settles the pages no store hashed and
 * takes the payload's checksum from the ledger at commit (C3).
 */
#ifndef CPR_WRITER_INTERNAL_H
#define CPR_WRITER_INTERNAL_H

#define XXH_STATIC_LINKING_ONLY     /* XXH3_state_t on the stack */
#include "writer.h"
#include "binding.h"
#include "first-failure.h"
#include "format.h"
#include "hash.h"
#include "image-file.h"
#include "metadata.h"
#include "persist.h"
#include "placement.h"
#include "populate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/param.h>        /* MIN, MAX */
#include <sys/uio.h>


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
    uint64_t slot;              /* I2: offset of the slot it goes into */
    CprRecord live;             /* payload fields; length 0: nothing live */

    /* C1: written under the write lock, read under either. */
    pthread_rwlock_t map;
    CprPlacement place;
    uint64_t allocated;         /* [place.base, allocated) has no holes
                                 * (but in the bare zone) */
    uint64_t bare;              /* 0, or the file offset from which this
                                 * save grew the file without blocks:
                                 * stores there go by pwrite() (I5) */
    uint64_t bare_blocks;       /* the file's blocks (bytes) when the
                                 * bare zone began */
    uint64_t old_end;           /* the file's size before this save */
    bool ram_in_place;          /* the VM's RAM stays out of the stream
                                 * (x-ignore-shared): it is small */
    uint64_t reach;             /* stream bytes a store may touch */
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
    CprFirstFailure failure;    /* C5 */
    atomic_bool finished;       /* committed or aborted */
};

/* C4: the stream length, wherever it is read. */
#define STREAM_LEN(w) atomic_load(&(w)->len)

/* I5: whether the page at file offset @off is in the bare zone, where
 * the file has blocks only where pwrite() put them (space.c). */
static inline bool cpr_space_is_bare(const CprWriter *w, uint64_t off)
{
    return w->bare && off >= w->bare;
}

/* writer.c: C5, and whether the save can still take a call. */
void cpr_writer_fail(CprWriter *w, char *err, char **errp);
int cpr_writer_check_usable(CprWriter *w, char **errp);

/* space.c: how far ahead of the stream to populate; the reach (the
 * stream bytes a store may touch) and page arrays brought up to date;
 * space for stream bytes [0, @end), relocated (I1) and allocated (I5).
 * Write lock held for the last two. */
uint64_t cpr_space_ahead(CprWriter *w);
int cpr_space_update(CprWriter *w, char **errp);
int cpr_space_reserve(CprWriter *w, uint64_t end, char **errp);
/* At commit, the payload's @len bytes complete: the bare zone's gaps get
 * blocks, the file is cut back to the payload's end (in 2 MiB units) and
 * the zone is gone.  On abort: the file cut back to where the zone
 * began.  Write lock held. */
int cpr_space_settle(CprWriter *w, uint64_t len, char **errp);
void cpr_space_release(CprWriter *w);

/* The warm-up before a save, as warmup.c decides it: @expect stream
 * bytes expected, the first @alloc of them allocated (and the file grown
 * for them) and the first @now (<= @alloc) populated @step at a time
 * until the monotonic clock passes @until_ms; the rest of @expect
 * populated on the populator's thread, and allocated by the stream's
 * own reservations where that thread has not. */
typedef struct CprWarmPlan {
    uint64_t expect, alloc, now, step;
    int64_t until_ms;
} CprWarmPlan;
int cpr_space_warm(CprWriter *w, const CprWarmPlan *plan, char **errp);

/* ledger.c: store @iov at stream offset @off (read lock, or with
 * @exclusive the write lock the caller holds); ledger-settle.c: the
 * checksum of payload [0, @len) from the ledger (write lock held). */
int64_t cpr_ledger_store(CprWriter *w, uint64_t off, const struct iovec *iov,
                         int iovcnt, bool append, bool exclusive,
                         char **errp);
int cpr_ledger_checksum(CprWriter *w, uint64_t len, uint64_t *csum,
                        char **errp);

#endif
