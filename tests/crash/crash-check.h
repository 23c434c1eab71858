/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Crash images and their verdicts.  At one crash point, build images from
 * the model (durable view + a subset of the dirty units), run the real
 * restore path on each and check it loads the last committed generation
 * or the one being saved, byte for byte, or refuses only if nothing was
 * committed yet.
 */
#ifndef CRASH_CHECK_H
#define CRASH_CHECK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct CrashGen {
    uint64_t gen;               /* 0: none */
    const uint8_t *data;
    uint64_t len;
} CrashGen;

typedef struct CrashExpect {
    const char *save;           /* for messages */
    CrashGen old;               /* last committed */
    CrashGen cur;               /* the save in progress; final once committing */
    uint64_t slot_off;          /* its record slot */
    bool committing;            /* cpr_writer_commit/invalidate() was called */
    bool old_invalidated;       /* old is an invalidation: must refuse */
    bool cur_invalidates;       /* cur publishes an invalidation */
    /* The commit returned 0: cur is durable, old no longer acceptable. */
    bool committed;
    /*
     * A save whose commit failed but whose record the media may still
     * hold (a dead device defeated the writer's undo): it may load, whole,
     * or refuse as invalidated if it was an invalidation.  gen 0: none.
     */
    CrashGen stale;
    bool stale_invalidates;
} CrashExpect;

typedef struct CrashStats {
    uint64_t points, images;
    uint64_t acc_old, acc_new;
    uint64_t acc_stale;         /* CrashExpect.stale loaded */
    uint64_t refused_ok;        /* nothing committed yet: correct */
    uint64_t refused_inval;     /* invalidated: correct */
    uint64_t refused_bad, torn; /* failures */
} CrashStats;

typedef struct CrashChecker CrashChecker;

CrashChecker *crash_checker_new(const char *path, uint64_t seed,
                                unsigned random_subsets);
void crash_checker_free(CrashChecker *c);

uint64_t crash_rand(CrashChecker *c);

/* Check every image of the model's current state. */
void crash_check_point(CrashChecker *c, const CrashExpect *e,
                       const char *where);

const CrashStats *crash_stats(const CrashChecker *c);

#endif
