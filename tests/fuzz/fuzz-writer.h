/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The writer fuzz target.  An input is 16 bytes of save parameters, then
 * an image in the compact layout of fuzz-image.h (re-signing flags,
 * superblock, both record slots, payload area), which becomes a real
 * file before a save into it starts:
 *
 *   [0]        mode: bits 0-1 the file: 0, 1 the image, 2 no file (the
 *              save creates it), 3 an empty file; bit 2 write the second
 *              half of the stream with out_pwritev and then rewrite its
 *              first quarter out of order; bit 3 abort instead of
 *              committing; bit 4 the file size is [1, 6) instead of what
 *              the image layout gives
 *   [1, 6)     file size, little-endian, modulo the largest size + 1
 *              (64 GiB; a sparse file: only the image's bytes are
 *              written), larger or smaller than the image's bytes
 *   [6, 8)     stream length, little-endian, modulo 16 KiB
 *   [8]        stream seed
 *   [9]        out_writev chunk size: 1 + 37 * [9] bytes
 *   [10], [11] record slot 0, 1: if the slot holds a valid record, the
 *              low nibble picks its payload offset and the high nibble its
 *              length from tables of boundary values (0: keep), and the
 *              record is encoded again, its XXH3 set as flag bit 2 of the
 *              image would
 *   [12, 16)   reserved, zero
 *   [16, end)  the image (fuzz-image.h), expanded by fuzz_expand()
 *
 * Missing bytes are zero.
 */
#ifndef FUZZ_WRITER_H
#define FUZZ_WRITER_H

enum {
    FW_FILE_MASK = 3, FW_FILE_MISSING = 2, FW_FILE_EMPTY = 3,
    FW_PWRITE = 4, FW_ABORT = 8, FW_SIZE = 16,
};
enum {
    FW_MODE_AT = 0, FW_SIZE_AT = 1, FW_LEN_AT = 6, FW_SEED_AT = 8,
    FW_CHUNK_AT = 9, FW_REC_AT = 10, FW_IMAGE_AT = 16,
};

#define FW_MAX_FILE (64ull << 30)
#define FW_MAX_STREAM (16u << 10)

#endif
