/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Whether a QEMU migration stream read from a pipe is complete, judged by
 * its framing alone (docs/exec-helper.md, "When a stream is complete").
 *
 * QEMU closes an exec: helper's pipe the same way whether the migration
 * completed, failed or was cancelled, and its sections carry no lengths,
 * so only the two ends of the stream can be checked:
 *
 *  - the start: QEMU_VM_FILE_MAGIC ("QEVM") and QEMU_VM_FILE_VERSION (3),
 *    both big-endian (qemu_savevm_state_header());
 *  - the end: QEMU_VM_EOF (0x00), QEMU_VM_VMDESCRIPTION (0x06), a
 *    big-endian 32-bit length L and exactly L bytes of JSON, the last
 *    bytes of the stream (qemu_savevm_state_complete_precopy_non_iterable()
 *    of QEMU 10.0 and 10.2).  QEMU's JSON writer escapes every byte
 *    outside 0x20..0x7e, so the description is a run of printable ASCII;
 *    it must be one JSON object with a "page_size" number and a
 *    "devices" array, as QEMU writes it.
 *
 * The checker keeps only the first 8 bytes and the last run of printable
 * bytes (plus the 6 before it), so its memory is bounded by the
 * description's size (at most CPR_STREAM_MAX_VMDESC), whatever the stream.
 */
#ifndef CPR_STREAM_END_H
#define CPR_STREAM_END_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A longer final printable run cannot be checked: the stream is refused. */
#define CPR_STREAM_MAX_VMDESC (64u << 20)
/*
 * Nor one whose arrays and objects nest deeper than this: it is refused
 * before it is parsed (the parser recurses per level).  QEMU's own nest
 * a few levels per VMStateDescription level, a few dozen at most.
 */
#define CPR_STREAM_MAX_VMDESC_DEPTH 1000u

#define CPR_QEMU_VM_FILE_MAGIC 0x5145564du      /* "QEVM" */
#define CPR_QEMU_VM_FILE_VERSION 3u
#define CPR_QEMU_VM_EOF 0x00u
#define CPR_QEMU_VM_VMDESCRIPTION 0x06u

typedef struct CprStreamEnd {
    uint64_t len;               /* bytes fed */
    uint8_t head[8];            /* the first bytes (len of them, at most 8) */
    uint8_t *tail;              /* up to 6 bytes, then the printable run */
    size_t prefix;              /* bytes of tail before the run */
    size_t tail_len, tail_cap;
    bool overflow;              /* the run outgrew CPR_STREAM_MAX_VMDESC */
} CprStreamEnd;

void cpr_stream_end_init(CprStreamEnd *s);
void cpr_stream_end_feed(CprStreamEnd *s, const void *buf, size_t len);

/*
 * 0 if the bytes fed so far are a complete stream; else -1 and *@why
 * (malloc()ed) says what is missing.  Never reads past what was fed.
 */
int cpr_stream_end_check(const CprStreamEnd *s, char **why);

/* Bytes of VM description at the end, after a successful check. */
uint32_t cpr_stream_end_vmdesc_len(const CprStreamEnd *s);

void cpr_stream_end_free(CprStreamEnd *s);

#endif
