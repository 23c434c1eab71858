/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The warm-up policy: what is made ready off the pause, decided here
 * alone.
 *
 *  Before a save (out_open; QEMU stops the VM after it): space for a
 *  stream like the last one, allocated and mapped, and as much of it
 *  populated as the media makes cheap, the rest on the other core while
 *  the stream comes (space.c executes the plan).  A first save into a
 *  new image does none of it: its stream allocates and populates as it
 *  goes.  The populator's thread, once the stream starts, also reads the
 *  guest RAM pages the commit will sample (binding.h), so that the
 *  commit finds them in the page cache.
 *
 *  After a restore (in_close; the guest runs): the room, the area the
 *  next save into the same image will use, grown and populated by an
 *  idle thread (room.c executes that).
 *
 * Words: the room is that warm area; the size a save is expected to need
 * is cpr_place_expected() (placement.h); the stream bytes a store may
 * touch are the writer's reach (space.c).
 */
#ifndef CPR_WARMUP_H
#define CPR_WARMUP_H

#include "reader.h"

/* At load, from the ABI glue: the policy (its defaults and the
 * environment), and room.c's helper thread if this QEMU was started to
 * restore (with -incoming; at start-up with x-preload-transports). */
void cpr_warmup_init(void);

/* in_open: the helper thread, if the load did not start it (does
 * nothing if it did). */
void cpr_warmup_before_restore(void);

/*
 * in_close: take over @r (a finished restore) and, as the policy says,
 * make the room the next save into its image will use: where that save
 * goes (never into the payload just restored) and about as long.
 */
void cpr_warmup_after_restore(CprReader *r);

#endif
