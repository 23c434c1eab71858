/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image fuzz target.  An input is a compact image, expanded into a
 * real file before cpr_reader_open() sees it:
 *
 *   [0]          flags: bit 0 re-sign the superblock, bit 1 re-sign both
 *                records, bit 2 set each record's payload XXH3 (so that
 *                mutations get past the checksums libFuzzer cannot forge)
 *   [1, 65)      superblock          -> file offset 0
 *   [65, 257)    commit record 0     -> file offset 4096
 *   [257, 449)   commit record 1     -> file offset 8192
 *   [449, end)   payload area        -> file offset 2 MiB
 *
 * A version-2 record's payload ends with the VM description (FORMAT.md):
 * its bytes are in the payload area like the stream's, so the fuzzer
 * mutates descriptions too, and a successful open runs the binding
 * checks against a VM without RAM blocks.
 *
 * The file is 2 MiB + payload-area bytes long when the input reaches the
 * payload area (even with zero bytes of it, so an empty stream can load),
 * else just the 12 KiB header.  Missing bytes are zero.
 */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    FUZZ_RESIGN_SB = 1, FUZZ_RESIGN_REC = 2, FUZZ_SET_XXH3 = 4,
};
enum {
    FUZZ_SB_AT = 1, FUZZ_REC0_AT = 65, FUZZ_REC1_AT = 257,
    FUZZ_PAYLOAD_AT = 449,
};

/* A property of the targets: abort (a crash to libFuzzer) naming it. */
#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } \
} while (0)

/* Inputs so far whose image loaded (the replay test wants some); for the
 * VM description target, descriptions that decoded. */
extern unsigned long fuzz_loaded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Expand the input into header[CPR_HEADER_SIZE] (CPR_HEADER_SIZE bytes),
 * applying the flags; returns the file size the layout gives.  The
 * payload area is data + FUZZ_PAYLOAD_AT, if size reaches it.
 */
uint64_t fuzz_expand(const uint8_t *data, size_t size, uint8_t *header);

#endif
