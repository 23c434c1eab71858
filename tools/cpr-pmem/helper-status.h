/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exec: save helper's status block (FORMAT.md, "Save helper status"):
 * what the last `cpr-pmem save` into an image is doing or how it ended,
 * so that `cpr-pmem wait` can tell a committed save from a failed one
 * after QEMU has already reported "completed".
 *
 * Informational: no save or restore reads it, and an image that never
 * saw the helper has zeros there.  It lives in the unused header area at
 * CPR_HS_OFFSET and is written with pwrite by the helper alone, which
 * holds an open file description lock (F_OFD_SETLK, F_WRLCK) on the
 * block for as long as the attempt runs: `wait` takes a read lock, so it
 * blocks until the attempt ends, and the kernel drops the lock when the
 * helper dies, so a "running" block that can be read-locked belongs to a
 * helper that is gone.  These locks are independent of the flock() the
 * writer and reader take (on local filesystems).
 */
#ifndef CPR_HELPER_STATUS_H
#define CPR_HELPER_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

#define CPR_HS_OFFSET CPR_HEADER_SIZE           /* 12 KiB */
#define CPR_HS_LOCK_LEN CPR_BLOCK_SIZE          /* the block is locked */
#define CPR_HS_SIZE 512u
#define CPR_HS_VERSION 1u
#define CPR_HS_MAGIC "QCPRPMHS"
#define CPR_HS_ID_LEN 64u                       /* NUL included */
#define CPR_HS_MSG_LEN 352u                     /* NUL included */

/* What the helper records about its own saves (the record's QEMU
 * version field), so that `wait` knows a record as one of them. */
#define CPR_HS_QEMU_VERSION "cpr-pmem save (exec:)"

typedef enum CprHsState {
    CPR_HS_RUNNING = 1,
    CPR_HS_COMMITTED = 2,
    CPR_HS_FAILED = 3,
} CprHsState;

typedef struct CprHelperStatus {
    uint64_t attempt;           /* 1, 2, ... per image */
    uint32_t state;             /* CprHsState */
    uint32_t pid;               /* of the helper */
    uint64_t generation;        /* the one the attempt commits */
    uint64_t stream_len;        /* bytes read from QEMU (at the end) */
    uint64_t start_ns, end_ns;  /* CLOCK_REALTIME; end 0 while running */
    char id[CPR_HS_ID_LEN];     /* save --id, or "" */
    char message[CPR_HS_MSG_LEN];
} CprHelperStatus;

/*
 * Pure, like format.h: fill buf[0, CPR_HS_SIZE); decode buf[0, len) (a
 * later version may be longer, up to CPR_HS_LOCK_LEN), any bytes.
 */
void cpr_hs_encode(const CprHelperStatus *st, uint8_t *buf);
CprDecode cpr_hs_decode(const uint8_t *buf, size_t len, CprHelperStatus *st);

/* pread / pwrite the block of @fd; -1 with errno. */
int cpr_hs_read(int fd, CprHelperStatus *st, CprDecode *state);
int cpr_hs_write(int fd, const CprHelperStatus *st);

/*
 * Take the block's OFD lock (F_RDLCK or F_WRLCK) on @fd, waiting up to
 * @timeout_ms (negative: for ever).  0, or -1 with errno (ETIMEDOUT).
 */
int cpr_hs_lock(int fd, short type, int64_t timeout_ms);
void cpr_hs_unlock(int fd);
/* Whether another open file description holds the write lock now. */
bool cpr_hs_write_locked(int fd);

const char *cpr_hs_state_name(uint32_t state);

/* Copy a NUL-terminated @src into @dst of @size, cut at a UTF-8
 * character boundary, NUL-padded. */
void cpr_hs_copy_str(char *dst, size_t size, const char *src);

#endif
