/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Test-only model of backend/persist.c.  The file lives in memory as two
 * views: "vol" holds every store (what the writer sees), "dur" only what a
 * persist point made durable.  Stores dirty units (8-byte words on the
 * pmem path: the power-fail atomicity of a store; 4 KiB pages on the
 * msync path: the unit of writeback); a drain promotes every dirty unit,
 * an msync the dirty pages of its range.  A crash image is "dur" plus any
 * subset of the dirty units taken from "vol".
 *
 * One image file at a time; the model outlives map/unmap, so units an
 * aborted save left dirty stay non-durable across saves, as in reality.
 */
#ifndef PERSIST_SIM_H
#define PERSIST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum CprSimPoint {
    CPR_SIM_AFTER_STORE,        /* one cpr_persist_store(), _zero(), _move() */
    CPR_SIM_BEFORE_PERSIST,     /* cpr_persist_range() entered */
    CPR_SIM_AFTER_PERSIST,      /* ... and promoted its units */
    CPR_SIM_PERSIST_FAILED,     /* ... or failed (see fail_at) */
    CPR_SIM_AFTER_GROW,         /* the file (both views) got longer */
} CprSimPoint;

/* What a failing flush made durable before it reported the error: real
 * media may have written none, all or some of the range. */
typedef enum CprSimPromote {
    CPR_SIM_PROMOTE_NONE,
    CPR_SIM_PROMOTE_ALL,
    CPR_SIM_PROMOTE_SOME,       /* every other unit */
} CprSimPromote;

typedef struct CprSim {
    bool pmem;                  /* word units + drain, or pages + msync */
    size_t unit;
    uint64_t size;
    uint8_t *vol, *dur;
    uint8_t *dirty;             /* one flag per unit */
    uint64_t *pending;          /* dirty unit indices, first store first */
    size_t npending, cap;
    uint64_t epoch;             /* bumped whenever dur or size changes */
    bool mapped;
    void (*hook)(CprSimPoint pt, void *opaque);
    void *opaque;
    /*
     * Flush failures: persist call number fail_at (counted from 1 in
     * persist_calls; 0: none) returns -1, and so does every later one if
     * fail_sticky (a dead device) rather than only that one (a transient
     * error).  Cleared by cpr_sim_reset(), unlike the hook.
     */
    unsigned persist_calls;
    unsigned fail_at;
    bool fail_sticky;
    CprSimPromote fail_promote;
} CprSim;

extern CprSim cpr_sim;

/* Forget the file (a new scenario); keeps the hook. */
void cpr_sim_reset(bool pmem);
void cpr_sim_free(void);

#endif
