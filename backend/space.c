/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The space of a save (writer-internal.h): how far a stream may reach,
 * and the file grown, allocated and mapped under it (I5), below the live
 * payload or above it after a relocation (I1); and the warm-up at open.
 */
#include "writer-internal.h"
#include "image-file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How far ahead of the stream to populate: as much as it has grown so
 * far (bounded), so a big stream takes few calls and a small one does not
 * pay for megabytes it never writes. */
uint64_t cpr_space_ahead(CprWriter *w)
{
    uint64_t len = STREAM_LEN(w);

    return MIN(MAX(len, CPR_POPULATE_MIN), CPR_POPULATE_AHEAD);
}

/* The reach (and the page arrays, 9 bytes per page) grows with what the
 * stream asks for, doubling, not with the file: a small save into a big
 * image made for full-RAM saves costs no more memory than its stream. */
#define REACH_MIN (64ull << 20)

/*
 * C1: the page arrays cover the reach, and the reach is what is mapped,
 * allocated (I5) and below the limit (I1).  Write lock held.
 */
int cpr_space_update(CprWriter *w, char **errp)
{
    uint64_t size = cpr_persist_size(w->p), base = w->place.base;
    uint64_t safe = size, reach, n;

    /* Where the file was sparse, only what ensure_space() allocated. */
    if (w->file.sparse && w->allocated < w->old_end) {
        safe = MIN(safe, w->allocated);
    }
    reach = safe > base ? safe - base : 0;
    /* Whole pages: a store's first touch zeroes the rest of its page
     * (put_part), and a page cut by the reach would keep stale bytes. */
    reach = MIN(reach, w->place.limit);
    reach = MIN(reach, MAX(2 * w->want, REACH_MIN)) / PAGE * PAGE;
    n = (reach + PAGE - 1) / PAGE;
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
    w->reach = reach;
    return 0;
}

/* The bare zone given blocks, now that something other than pwrite()
 * will touch it (a relocation's copy).  Write lock held. */
static int fill_bare(CprWriter *w, char **errp)
{
    uint64_t size = cpr_persist_size(w->p);

    if (w->bare && w->bare < size &&
        cpr_persist_fill(w->p, w->bare, size - w->bare, errp) < 0) {
        return -1;
    }
    w->bare = 0;
    return 0;
}

/* The bare zone begins at the file's @size: what blocks the file has
 * then, for lost_blocks(). */
static int zone_begins(CprWriter *w, uint64_t size, char **errp)
{
    struct stat st;

    if (cpr_image_stat(&w->file, &st, errp) < 0) {
        return -1;
    }
    w->bare = size;
    w->bare_blocks = (uint64_t)st.st_blocks * 512;
    return 0;
}

/* The file grown from @size to @target without blocks: the bare zone,
 * begun here if it has not yet. */
static int grow_bare(CprWriter *w, uint64_t size, uint64_t target,
                     char **errp)
{
    if (!w->bare && zone_begins(w, size, errp) < 0) {
        return -1;
    }
    return cpr_persist_extend(w->p, target, errp);
}

/* How far past the allocated part holes of the file as it was before
 * this save may need filling for stream end @end: up to @end and the
 * populator's reach, if the file was sparse (else nothing). */
static uint64_t holes_end(CprWriter *w, uint64_t end)
{
    uint64_t from = w->allocated;

    if (w->file.sparse && end > from && from < w->old_end) {
        return MIN(MAX(end, from + cpr_space_ahead(w)), w->old_end);
    }
    return from;
}

/*
 * I5: the file holds [0, @end) with blocks, and the mapping covers it.
 * What this save grows is allocated as it grows; holes can only be where
 * the file was before, and only if it was sparse then (punched by
 * someone, or copied without its holes filled): looked for in big steps.
 * With @bare, on media where pwrite() beats a fresh mapping, the growth
 * gets no blocks: it is the bare zone, which stores reach by pwrite()
 * alone (allocating as they write), and the commit fills what they left
 * (cpr_space_settle).  A posix_fallocate() of the growth under the write
 * lock was a third of a first full-RAM save.
 * Sets *@moved if the mapping moved: the populator's thread is stopped
 * then, and the caller, which knows where the stream goes on, resets its
 * cursor (a remap loses the page tables; need() maps what is stored).
 * Write lock held.
 */
static int ensure_space(CprWriter *w, uint64_t end, bool *moved, bool bare,
                        char **errp)
{
    uint64_t from = w->allocated, to = holes_end(w, end);
    uint64_t size = cpr_persist_size(w->p);
    uint64_t target = end > size ? cpr_grow_target(size, end) : 0;

    bare = bare && cpr_persist_writes_file(w->p);
    if (!bare && fill_bare(w, errp) < 0) {
        return -1;
    }
    /* The file grown and its holes filled, one after the other; the
     * populator's thread stopped first if the mapping moves. */
    if (target) {
        cpr_populator_stop(w->pop);
        if ((bare ? grow_bare(w, size, target, errp) :
             cpr_persist_grow(w->p, target, end, errp)) < 0) {
            return -1;
        }
        *moved = true;
    }
    if (to > from && cpr_persist_allocate(w->p, from, to - from, errp) < 0) {
        return -1;
    }
    w->allocated = MAX(to, end);
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
    bool moved = false;         /* the cursor is reset below in any case */

    cpr_populator_stop(w->pop);
    w->place = (CprPlacement){ high, CPR_NO_LIMIT, w->place.expect };
    w->allocated = high;
    /* The copy below goes through the mapping: no bare zone. */
    if (ensure_space(w, high + end, &moved, false, errp) < 0) {
        return -1;
    }
    cpr_populator_reset(w->pop, w->p, high);
    cpr_populator_need(w->pop, high, high + end, cpr_space_ahead(w));
    return cpr_persist_move(w->p, high, low,
                            cpr_align_up(STREAM_LEN(w), PAGE), errp);
}

/* Room for stream bytes [0, end), relocated (I1) and allocated (I5).
 * Write lock held. */
int cpr_space_reserve(CprWriter *w, uint64_t end, char **errp)
{
    uint64_t pages;
    bool moved = false;
    int ret;

    if (end > MAX_STREAM) {
        cpr_image_error(&w->file, errp, "stream too large");
        return -1;
    }
    pages = cpr_align_up(end, PAGE);    /* the reach is whole pages */
    w->want = MAX(w->want, pages);
    if (pages > w->place.limit && relocate(w, pages, errp) < 0) {
        return -1;
    }
    ret = ensure_space(w, w->place.base + pages, &moved, true, errp);
    if (ret == 0) {
        ret = cpr_space_update(w, errp);
    }
    if (moved) {
        cpr_populator_reset(w->pop, w->p, w->place.base);
    }
    if (ret < 0) {
        return -1;
    }
    if (end > w->reach) {
        cpr_image_error(&w->file, errp, "no room for %llu stream bytes "
                        "(internal error)", (unsigned long long)end);
        return -1;
    }
    return 0;
}

/*
 * I5, I6 for the bare zone [@bare, size): a pwrite() past a file another
 * process cut short grows it again, so a cut shows only as the holes it
 * left where stores had written.  Every page of the zone has blocks once
 * it is settled, and nothing below it lost any: fewer blocks than the
 * file had when the zone began plus the zone is such a cut (a file with
 * holes, such as a new image's header area, has them below the zone).
 */
static int lost_blocks(CprWriter *w, uint64_t bare, char **errp)
{
    struct stat st;

    if (cpr_image_stat(&w->file, &st, errp) < 0) {
        return -1;
    }
    if ((uint64_t)st.st_blocks * 512 <
        w->bare_blocks + ((uint64_t)st.st_size - bare)) {
        cpr_image_error(&w->file, errp, "lost blocks while being written "
                        "(truncated or punched by another process)");
        return -1;
    }
    return 0;
}

int cpr_space_settle(CprWriter *w, uint64_t len, char **errp)
{
    uint64_t size = cpr_persist_size(w->p), bare = w->bare;
    uint64_t page_end = cpr_align_up(w->place.base + len, PAGE);
    uint64_t end = MAX(cpr_align_up(page_end, CPR_ALIGN), bare);

    if (!bare) {
        return 0;
    }
    /* Past the payload, the growth's slack goes (the file stays in 2 MiB
     * units), and what is left of it, beyond the payload's last page,
     * gets blocks: no hole stays for the next save to look for. */
    if (end < size && cpr_persist_trim(w->p, end, errp) < 0) {
        return -1;
    }
    /* Below a payload placed above the file's old end, nothing wrote. */
    if (bare < w->place.base &&
        cpr_persist_fill(w->p, bare, w->place.base - bare, errp) < 0) {
        return -1;
    }
    page_end = MAX(page_end, bare);
    if (end > page_end &&
        cpr_persist_fill(w->p, page_end, end - page_end, errp) < 0) {
        return -1;
    }
    w->bare = 0;
    return lost_blocks(w, bare, errp);
}

void cpr_space_release(CprWriter *w)
{
    /* Above the live payload, and nothing committed there: the space a
     * failed save took (on a full tmpfs, all of it) goes back. */
    if (w->bare && cpr_persist_trim(w->p, w->bare, NULL) == 0) {
        w->bare = 0;
    }
}

/* The warm-up's plan for a save (warmup.c), carried out; right after
 * open, before any store (so the save cannot have failed yet). */
int cpr_space_warm(CprWriter *w, const CprWarmPlan *plan, char **errp)
{
    uint64_t base = w->place.base, at = 0;
    bool moved = false;
    int ret;

    pthread_rwlock_wrlock(&w->map);
    w->want = MAX(w->want, plan->expect);
    ret = ensure_space(w, base + plan->alloc, &moved, false, errp);
    if (ret == 0) {
        ret = cpr_space_update(w, errp);
    }
    if (ret == 0) {
        cpr_persist_populate(w->p, w->slot, CPR_BLOCK_SIZE);
    }
    if (moved) {
        cpr_populator_reset(w->pop, w->p, base);
    }
    while (ret == 0 && at < plan->now &&
           (at == 0 || cpr_monotonic_ms() < plan->until_ms)) {
        uint64_t step = MIN(plan->now - at, plan->step);

        cpr_populator_need(w->pop, base + at, base + at + step, 0);
        at += step;
    }
    if (ret == 0) {
        cpr_populator_background(w->pop, base + plan->expect);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
}

int cpr_writer_populate_size(CprWriter *w, uint64_t size, char **errp)
{
    int ret = -1;

    if (cpr_writer_check_usable(w, errp) < 0) {
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
        w->bare = 0;    /* all of it has blocks: none to cut back */
        cpr_populator_reset(w->pop, w->p, 0);
        cpr_populator_need(w->pop, 0, cpr_persist_size(w->p), 0);
        ret = cpr_space_update(w, errp);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
}
