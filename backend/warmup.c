/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The warm-up policy (warmup.h). */
#include "warmup.h"
#include "room.h"
#include "writer-internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
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
} CprWarmup;

static CprWarmup policy = {
    .room_after_restore = true,
    .open_bytes = 64ull << 20,
    .open_ms = 100,
};

void cpr_warmup_init(void)
{
    /* Measurement only (bench/restore-outside.c): no room at all. */
    policy.room_after_restore = getenv("CPR_PMEM_NO_ROOM") == NULL;
    cpr_room_init();
}

/*
 * Before a save: a stream like the last; the first one into an image
 * gets all of it (8 MiB, or what "cpr-pmem create --size" made), unless
 * the file is sparse: then its size says nothing about what a stream
 * needs.  On tmpfs and DAX, populating costs page-table work only: as
 * much as open_ms allow now, while the VM still runs, rather than inside
 * the pause.  On a disk filesystem it may read the old payload from the
 * device: only a first part now.  The rest on the other core while the
 * stream is written.
 */
int cpr_writer_populate(CprWriter *w, char **errp)
{
    /* Right after open: the file's size is still the one it had then. */
    uint64_t base = w->place.base, size = w->old_end;
    CprWarmPlan plan = {
        .expect = w->place.expect ? w->place.expect : size - base,
        .until_ms = cpr_monotonic_ms() + policy.open_ms,
    };

    if (w->file.sparse && !w->place.expect) {
        plan.expect = MIN(plan.expect, CPR_INITIAL_SIZE - base);
    }
    plan.now = w->file.populate_is_cheap ? plan.expect :
               MIN(plan.expect, policy.open_bytes);
    plan.step = policy.open_bytes;
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
