/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The writer fuzz target.  An input is 16 bytes of save parameters, then
 * an image in the compact layout of fuzz-image.h (re-signing flags,
 * superblock, both record slots, payload area), which becomes a real
 * file before a save into it starts:
 *
 *   [0]        mode: bits 0-1 the file: 0, 1 the image, 2 no file (the
 *              save creates it), 3 an empty file; bit 2 positional
 *              writes: append the first half of the stream, write the
 *              second half with out_pwritev after a gap of [12, 14)
 *              bytes (reading back as zeros), then rewrite the stream's
 *              first quarter out of order; bit 3 abort instead of
 *              committing; bit 4 the file size is [1, 6) instead of what
 *              the image layout gives; bits 5-6 the VM's RAM blocks
 *              (FW_VM_*): none, anonymous memory, a file (memfd), both;
 *              bit 7 the guest writes its RAM between out_open and
 *              out_commit
 *   [1, 6)     file size, little-endian, modulo the largest size + 1
 *              (64 GiB; a sparse file: only the image's bytes are
 *              written), larger or smaller than the image's bytes
 *   [6, 8)     stream length, little-endian, modulo 16 KiB
 *   [8]        stream seed
 *   [9]        out_writev chunk size: 1 + 37 * [9] bytes
 *   [10], [11] record slot 0, 1: if the slot holds a valid record, the
 *              low nibble picks its payload offset and the high nibble its
 *              length from tables of boundary values (0: keep), and the
 *              record is encoded again (its VM description's length
 *              kept where the new length allows), its XXH3 set as flag
 *              bit 2 of the image would
 *   [12, 14)   with bit 2: the gap, little-endian, modulo 16 KiB
 *   [14]       bits 0-5 in_readv size: 61 * that many bytes a call (0:
 *              all at once); bit 6 with bit 2 of [0]: the out-of-order
 *              rewrite comes before the second half (which may then
 *              relocate the stream after a page was written in part);
 *              bit 7 the file's bytes after the image's, up to 16 MiB,
 *              are a pattern instead of holes (an older save's bytes,
 *              where a new payload may go)
 *   [15]       where in_preadv splits its two reads of the stream:
 *              at [15] / 256 of it
 *   [16, end)  the image (fuzz-image.h), expanded by fuzz_expand()
 *
 * Missing bytes are zero.
 */
#ifndef FUZZ_WRITER_H
#define FUZZ_WRITER_H

enum {
    FW_FILE_MASK = 3, FW_FILE_MISSING = 2, FW_FILE_EMPTY = 3,
    FW_PWRITE = 4, FW_ABORT = 8, FW_SIZE = 16,
    FW_VM_SHIFT = 5, FW_VM_MASK = 3 << FW_VM_SHIFT,
    FW_GUEST_WRITES = 128,
};
/* The RAM blocks, (mode & FW_VM_MASK) >> FW_VM_SHIFT. */
enum {
    FW_VM_NONE = 0, FW_VM_ANON = 1, FW_VM_FILE = 2, FW_VM_BOTH = 3,
};
enum {
    FW_READ_MASK = 63, FW_LO_FIRST = 64, FW_STALE = 128,
};
enum {
    FW_MODE_AT = 0, FW_SIZE_AT = 1, FW_LEN_AT = 6, FW_SEED_AT = 8,
    FW_CHUNK_AT = 9, FW_REC_AT = 10, FW_GAP_AT = 12, FW_READ_AT = 14,
    FW_SPLIT_AT = 15, FW_IMAGE_AT = 16,
};

/*
 * Payload offset table entry FW_PICK_LOW: this many bytes into the
 * payload area, so that a short live payload there leaves room below it
 * for a new one, bounded by it (a longer stream relocates; FORMAT.md,
 * "Place"), and the bound is not page-aligned.
 */
#define FW_PICK_LOW 15
#define FW_LOW_OFF (4096u + 100u)

#define FW_STALE_END (16u << 20)
#define FW_MAX_FILE (64ull << 30)
#define FW_MAX_STREAM (16u << 10)

#endif
