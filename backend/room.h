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

#endif
