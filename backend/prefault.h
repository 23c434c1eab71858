/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Populating a large save's page tables on the other core.
 *
 * A full-RAM save writes gigabytes into a mapping whose page tables are
 * empty (every save maps the image afresh), and populating them costs
 * about as much as copying the data.  Doing it all in out_open would
 * block QEMU's main loop for that long while the guest still runs; so
 * out_open populates the start and hands the rest to a thread that stays
 * ahead of the stream.  Best effort: the writer still populates whatever
 * the thread has not reached.
 */
#ifndef CPR_PREFAULT_H
#define CPR_PREFAULT_H

#include "persist.h"

typedef struct CprPrefault CprPrefault;

/* Populate [off, end) of @p's current mapping; NULL if no thread. */
CprPrefault *cpr_prefault_start(CprPersist *p, uint64_t off, uint64_t end);

/*
 * The same for a file nobody has mapped yet: after a restore, where the
 * next save will go and about how long it will be are known (placement.h),
 * and the guest will run for hours.  The thread grows the file to @end
 * (the first touch of each page then allocates and zeroes it, on tmpfs and
 * DAX alike, instead of inside that save's pause) and populates
 * [off, end) of its own mapping.  No byte of the file changes, so this
 * takes no lock and leaves readers, tools and writers unaffected.
 */
CprPrefault *cpr_prefault_start_file(const char *path, uint64_t off,
                                     uint64_t end);

/* File offset below which the thread has populated the mapping. */
uint64_t cpr_prefault_done(const CprPrefault *pf);

/* The writer populated up to @off itself: the thread skips ahead. */
void cpr_prefault_skip(CprPrefault *pf, uint64_t off);

/* Stop and join the thread; needed before the mapping changes. */
void cpr_prefault_stop(CprPrefault *pf);

#endif
