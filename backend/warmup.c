/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The warm-up policy (warmup.h). */
#include "warmup.h"
#include "cmdline.h"
#include "room.h"
#include "writer-internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

typedef struct CprWarmup {
    /* After a restore, make the room for the next save (off only for
     * measurements: CPR_PMEM_NO_ROOM=1 in the environment). */
    bool room_after_restore;
    /* Before a save, populate at most this much of the expected stream
     * where populating may read from a device (a disk filesystem) ... */
    uint64_t open_bytes;
    /* ... and where it only fills page tables (tmpfs, DAX), as much as
     * this many ms of QEMU's main thread buy (out_open holds its lock). */
    unsigned open_ms;
    /* A first save into a new image on a disk filesystem: this much of
     * its stream's space made ready before the VM stops (a small VM's
     * stream is 0.3-0.5 MiB). */
    uint64_t disk_first_bytes;
} CprWarmup;

static CprWarmup policy = {
    .room_after_restore = true,
    .open_bytes = 64ull << 20,
    .open_ms = 100,
    .disk_first_bytes = 1ull << 20,
};

/* may_restore -- whether this process may restore (an argument list
 * that cannot be read may) */
static bool may_restore(void)
{
    bool incoming, preloads;

    return cpr_cmdline_incoming(NULL, &incoming, &preloads) < 0 || incoming;
}

void cpr_warmup_init(void)
{
    /* Measurement only (bench/restore-outside.c): no room at all. */
    policy.room_after_restore = getenv("CPR_PMEM_NO_ROOM") == NULL;
    /* The room's helper is for restores; a QEMU that only saves does
     * not start it, inside its migrate command. */
    if (may_restore()) {
        cpr_room_init();
    }
}

void cpr_warmup_before_restore(void)
{
    cpr_room_init();
}

/*
 * Before a save, while the VM still runs: space for a stream like the
 * last, allocated.  On tmpfs and DAX, populating costs page-table work
 * only: all of it now, as much as open_ms allow, rather than inside the
 * pause.  On a disk filesystem it may read the old payload from the
 * device: only a first part now.  The rest on the other core while the
 * stream is written.
 *
 * Without a last stream: an image made for its saves ("cpr-pmem create
 * --size", allocated throughout) gets all of it, as a stream of that
 * size, when the stream carries the RAM.  A new image (sparse: made
 * with its header only), a sparse copy, or any image when the RAM stays
 * in place (x-ignore-shared) says nothing about the stream (a small
 * VM's is 0.3-0.5 MiB; populating a created image's 8 MiB took
 * 0.25-0.4 ms before the stop):
 * nothing is done before the VM stops, and the stream's reservations
 * allocate (I5) and populate ahead of it as it goes, in steps as large
 * as the stream so far.  A thread doing that beside the stream only
 * competed with it for the CPUs (the pause of a qtest VM's first save
 * 2.7-3.1 ms with one, 2.4-2.6 without, on 2 loaded cores).
 */
int cpr_writer_populate(CprWriter *w, char **errp)
{
    /* Right after open: the file's size is still the one it had then. */
    uint64_t base = w->place.base, size = w->old_end;
    CprWarmPlan plan = {
        .expect = w->place.expect ? w->place.expect : size - base,
        .step = policy.open_bytes,
        .until_ms = cpr_monotonic_ms() + policy.open_ms,
    };

    /* An image made for its saves ("cpr-pmem create") is no hint of a
     * stream that leaves the RAM in place: device state, as above. */
    if ((w->file.sparse || w->ram_in_place) && !w->place.expect) {
        /* On a disk filesystem, allocating and faulting in the pause
         * costs journal commits: a first part before the VM stops.
         * Elsewhere the stream's first step is allocated (not
         * populated): a full filesystem fails the save here, with its
         * reason, before the VM stops (QEMU reports a failed first write
         * as an I/O error). */
        plan.expect = w->file.populate_is_cheap ? 0 :
                      MIN(size - base, policy.disk_first_bytes);
        plan.now = plan.expect;
        plan.alloc = MAX(plan.expect, MIN(size - base, CPR_POPULATE_MIN));
        return cpr_space_warm(w, &plan, errp);
    }
    plan.alloc = plan.expect;
    plan.now = w->file.populate_is_cheap ? plan.expect :
               MIN(plan.expect, policy.open_bytes);
    return cpr_space_warm(w, &plan, errp);
}

void cpr_warmup_after_restore(CprReader *r)
{
    const CprRecord *rec = cpr_reader_record(r);
    CprPlacement next = cpr_place_new(rec->payload_off, rec->payload_len);
    uint64_t len = cpr_place_expected(rec->payload_len);
    /* In whole 2 MiB units, as the file grows (FORMAT.md); a bounded room
     * ends at the live payload, which is aligned already. */
    uint64_t end = cpr_align_up(next.base + MIN(len, next.limit), CPR_ALIGN);

    cpr_room_after_restore(r, next.base,
                           policy.room_after_restore ? end : 0);
}
