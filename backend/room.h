/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * After a restore: close the reader and make room for the next save into
 * the same image, off QEMU's main thread and off the restored guest's
 * first milliseconds (room.c says why and how).
 */
#ifndef CPR_ROOM_H
#define CPR_ROOM_H

#include <stdbool.h>

#include "reader.h"

/* At load: start the helper thread (without one, the work is inline). */
void cpr_room_init(void);

/* Take over @r (a finished restore): close it, and with @make_room
 * populate the room the next save into its image will use. */
void cpr_room_after_restore(CprReader *r, bool make_room);

/* A save is about to start: finish any pending job, stop the room. */
void cpr_room_stop(void);

#endif
