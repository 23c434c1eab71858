/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Populating an image mapping's page tables ahead of the stores, so that
 * a save does not take a page fault per 4 KiB inside the VM's pause.
 *
 * One populator owns the cursor below which the mapping is populated.
 * The writer asks for what it is about to store (cpr_populator_need) and
 * may hand the rest of the expected stream to a thread on the other core
 * (cpr_populator_background), which stays ahead of the stream; whatever
 * the thread has not reached, need() populates itself.
 *
 * After a restore, cpr_populator_start_file() does the same for the room
 * the next save will use, while the guest runs: that save then pays for
 * neither the allocation nor the faults.
 */
#ifndef CPR_POPULATE_H
#define CPR_POPULATE_H

#include "persist.h"

typedef struct CprPopulator CprPopulator;

CprPopulator *cpr_populator_new(void);

/* Stops the thread; NULL is fine. */
void cpr_populator_free(CprPopulator *pop);

/* A new mapping (map or remap): [0, @from) counts as populated.  Stops
 * the thread first. */
void cpr_populator_reset(CprPopulator *pop, CprPersist *p, uint64_t from);

/*
 * [@from, @end) is about to be stored: populate up to @end before
 * returning, and @ahead bytes beyond (capped at the file's end), unless
 * the thread already did.  A range far beyond the cursor (a positional
 * write) gets its own pages only: the cursor stays with the stream
 * behind it.  Any number of threads may call this at once, but not
 * while reset(), background() or stop() runs (the writer's write lock).
 */
void cpr_populator_need(CprPopulator *pop, uint64_t from, uint64_t end,
                        uint64_t ahead);

/* Populate up to @end on a thread; at most one runs at a time.  The
 * thread starts work at the first need() (the stream's first store, once
 * QEMU has stopped the VM) or stop(); it also runs the job, if any.
 * Without a thread, the job runs here. */
void cpr_populator_background(CprPopulator *pop, uint64_t end);

/*
 * More pages to make ready off the pause, not the image's: @fn(@arg)
 * runs once on the thread background() starts, before it populates,
 * skipped if the thread is stopped before; @free_fn(@arg) when the
 * populator is freed.  @fn must finish in well under a millisecond:
 * stop() waits for it.  A NULL @arg sets none.  Under the writer's write
 * lock, like background().
 */
void cpr_populator_job(CprPopulator *pop, void (*fn)(void *),
                       void (*free_fn)(void *), void *arg);

/* Stop and join the thread: needed before the mapping changes. */
void cpr_populator_stop(CprPopulator *pop);

/*
 * On a thread: take a shared lock on the image @img (which it takes over;
 * a reopening of a verified image, never a path that may name another
 * file by now), grow it to @end if it is shorter (undone if that fails),
 * unlock, then map it and populate [@off, @end) where that dirties no
 * page (memory, DAX; not a disk filesystem).  No byte of the file
 * changes.  Skipped if a save holds the lock.  NULL if no thread could
 * start (@img is freed then); @img NULL gives NULL.
 */
struct CprImage;
CprPopulator *cpr_populator_start_file(struct CprImage *img, uint64_t off,
                                       uint64_t end);

/*
 * For tests: what every populator of this process did so far, so that a
 * test can assert what the warm-up promises rather than only that the
 * data loads.
 */
typedef struct CprPopulatorStats {
    uint64_t populated;         /* bytes populated (thread and need()) */
    uint64_t threads;           /* threads started */
    uint64_t stops;             /* threads stopped short of their goal */
    uint64_t remaps;            /* resets: a new mapping */
    uint64_t remaps_running;    /* of them with a thread running: a bug */
    uint64_t last_goal;         /* the end last handed to background() */
    uint64_t files_running;     /* after-restore populators alive now */
    uint64_t jobs;              /* jobs run (cpr_populator_job) */
} CprPopulatorStats;

void cpr_populator_stats(CprPopulatorStats *s);

#endif
