/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * After a restore: close the reader and make the room (warmup.h) for the
 * next save into the same image, off QEMU's main thread and off the
 * restored guest's first milliseconds (room.c says why and how).  What
 * the room is, warmup.c decides; this is how it is made.
 */
#ifndef CPR_ROOM_H
#define CPR_ROOM_H

#include <stdbool.h>
#include <stdint.h>

#include "reader.h"

/* Start the helper thread, once (without one, the work is inline). */
void cpr_room_init(void);

/* Take over @r (a finished restore): close it, and grow and populate
 * the room [@off, @end) of its image (nothing if empty). */
void cpr_room_after_restore(CprReader *r, uint64_t off, uint64_t end);

/* A save is about to start: finish any pending job, stop the room. */
void cpr_room_stop(void);

/*
 * A piece of a restore's own work the helper may do beside the caller's
 * (in_open: the binding check beside the payload's verification), at
 * normal priority; whoever gets to it first runs it, once.  It must not
 * call back into room.c.
 */
typedef enum {
    CPR_TASK_POSTED, CPR_TASK_RUNNING, CPR_TASK_DONE,
} CprTaskState;

typedef struct CprTask {
    void (*fn)(void *arg);
    void *arg;
    CprTaskState state;         /* guarded by room.c's lock */
} CprTask;

/* Offer @t (fn and arg set) to the helper; without one (none started,
 * or a forked child), or with another task pending, it stays the
 * caller's. */
void cpr_room_post(CprTask *t);

/* @t done when this returns: if the helper has not taken it, run here
 * (a helper starved of a CPU never delays the caller by more than the
 * task itself) if @run, else dropped; if it has, waited for. */
void cpr_room_finish(CprTask *t, bool run);

#endif
