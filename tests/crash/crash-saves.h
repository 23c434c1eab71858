/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sequence of saves the crash tests walk, shared so that the power
 * failure test (test-crash.c) and the flush failure test
 * (test-flush-fail.c) cover the same placements.
 */
#ifndef CRASH_SAVES_H
#define CRASH_SAVES_H

#include <stdbool.h>
#include <stdint.h>

#define MIB (1ull << 20)

typedef enum { COMMIT, ABORT, CLOSE, INVALIDATE } SaveEnd;

typedef struct Save {
    const char *name;
    uint64_t len;
    SaveEnd end;
    bool gaps;                  /* out-of-order pwrites, zero gap */
} Save;

/*
 * Placement walk (FORMAT.md "Place"): the file starts at 4 MiB; gen 3
 * lands above gen 2 at 4 MiB (growth to 8); gen 4 starts below gen 3,
 * hits it, relocates above it to 6 MiB and grows to 16 and 32 MiB; gen 5
 * goes below gen 4, gen 6 above gen 5, the aborted relocation above gen 6.
 * Gen 8 invalidates gen 7 (refusal is then the right answer) until gen 9.
 */
static const Save saves[] = {
    { "empty stream", 0, COMMIT, false },
    { "1 byte", 1, COMMIT, false },
    { "300 KB", 300000, COMMIT, false },
    { "aborted 100 KB", 100000, ABORT, false },
    { "12.5 MiB: relocates, grows twice", 12 * MIB + MIB / 2, COMMIT, false },
    { "64 KiB below the big one", 64 * 1024, COMMIT, false },
    { "5 MiB above the small one", 5 * MIB, COMMIT, false },
    { "3 MiB, relocates, closed without commit", 3 * MIB, CLOSE, false },
    { "200 KB with pwrite gaps", 200000, COMMIT, true },
    { "invalidate", 0, INVALIDATE, false },
    { "1 byte after all that", 1, COMMIT, false },
};

#define NR_SAVES (sizeof(saves) / sizeof(saves[0]))

#endif
