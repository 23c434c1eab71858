/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a new payload goes and how the file grows: pure arithmetic, so the
 * policy can be tested without files.  The one rule: a new payload never
 * overlaps the live (last committed) one.
 */
#ifndef CPR_PLACEMENT_H
#define CPR_PLACEMENT_H

#include <stdint.h>

#define CPR_NO_LIMIT UINT64_MAX
/* Room for two small device-state payloads (2 MiB and 4 MiB): the
 * second save of a new image does not grow the file. */
#define CPR_INITIAL_SIZE (8ull << 20)
#define CPR_MAX_GROW_STEP (1ull << 30)
/* Page tables are populated ahead of the stream, in one call per step
 * (and before the VM stops as warmup.h says). */
#define CPR_POPULATE_MIN (256ull << 10)
#define CPR_POPULATE_AHEAD (8ull << 20)

typedef struct CprPlacement {
    uint64_t base;  /* file offset of stream byte 0 */
    uint64_t limit; /* stream bytes that fit before the live payload */
    uint64_t expect; /* cpr_place_expected() of the live payload; 0: none */
} CprPlacement;

/* Placement for a new save; @live_len == 0 means no live payload bytes. */
CprPlacement cpr_place_new(uint64_t live_off, uint64_t live_len);

/*
 * The size a save is expected to need after one of @len bytes: streams
 * of one VM vary a little from save to save.  The one place for that
 * policy.
 */
uint64_t cpr_place_expected(uint64_t len);

/* The spot above the live payload, with room left below for the next
 * save: align_up(live_off + expected(live_len) + 1 MiB, 2 MiB). */
uint64_t cpr_place_above(uint64_t live_off, uint64_t live_len);

/* File size to grow to so that @need bytes fit: at least double, in
 * 2 MiB steps, at most 1 GiB more per step unless @need wants more. */
uint64_t cpr_grow_target(uint64_t cur, uint64_t need);

uint64_t cpr_align_up(uint64_t v, uint64_t align);

#endif
