/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "helper-status.h"
#include "image-file.h"
#include "metadata.h"
#include "le.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* Field offsets: the byte-exact layout documented in FORMAT.md. */
enum {
    HS_MAGIC = 0, HS_VERSION = 8, HS_SIZE = 12, HS_ATTEMPT = 16,
    HS_STATE = 24, HS_PID = 28, HS_GEN = 32, HS_STREAM_LEN = 40,
    HS_START = 48, HS_END = 56, HS_ID = 64, HS_MSG = 128,
    HS_RESERVED = 480, HS_CSUM = 504,
};
_Static_assert(HS_ID + CPR_HS_ID_LEN == HS_MSG, "layout");
_Static_assert(HS_MSG + CPR_HS_MSG_LEN == HS_RESERVED, "layout");
_Static_assert(HS_CSUM + 8 == CPR_HS_SIZE, "layout");
_Static_assert(CPR_HS_OFFSET + CPR_HS_LOCK_LEN <= CPR_PAYLOAD_AREA, "layout");

void cpr_hs_copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);

    /* Do not cut a UTF-8 sequence: back off over continuation bytes. */
    if (n == size - 1 && src[n]) {
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memset(dst, 0, size);
    memcpy(dst, src, n);
}

void cpr_hs_encode(const CprHelperStatus *st, uint8_t *buf)
{
    memset(buf, 0, CPR_HS_SIZE);
    memcpy(buf + HS_MAGIC, CPR_HS_MAGIC, 8);
    cpr_put32(buf + HS_VERSION, CPR_HS_VERSION);
    cpr_put32(buf + HS_SIZE, CPR_HS_SIZE);
    cpr_put64(buf + HS_ATTEMPT, st->attempt);
    cpr_put32(buf + HS_STATE, st->state);
    cpr_put32(buf + HS_PID, st->pid);
    cpr_put64(buf + HS_GEN, st->generation);
    cpr_put64(buf + HS_STREAM_LEN, st->stream_len);
    cpr_put64(buf + HS_START, st->start_ns);
    cpr_put64(buf + HS_END, st->end_ns);
    cpr_hs_copy_str((char *)buf + HS_ID, CPR_HS_ID_LEN, st->id);
    cpr_hs_copy_str((char *)buf + HS_MSG, CPR_HS_MSG_LEN, st->message);
    cpr_put64(buf + HS_CSUM, XXH3_64bits(buf, HS_CSUM));
}

CprDecode cpr_hs_decode(const uint8_t *buf, size_t len,
                        CprHelperStatus *st)
{
    uint32_t version = 0, size = 0;
    CprDecode d;

    memset(st, 0, sizeof(*st));
    d = cpr_decode_envelope(buf, len, CPR_HS_MAGIC, CPR_HS_SIZE, CPR_HS_SIZE,
                            CPR_HS_VERSION, &version, &size);
    if (d != CPR_DECODE_OK) {
        return d;
    }
    if (size != CPR_HS_SIZE ||
        !cpr_all_zero(buf + HS_RESERVED, HS_CSUM - HS_RESERVED)) {
        return CPR_DECODE_BAD;
    }
    st->attempt = cpr_get64(buf + HS_ATTEMPT);
    st->state = cpr_get32(buf + HS_STATE);
    st->pid = cpr_get32(buf + HS_PID);
    st->generation = cpr_get64(buf + HS_GEN);
    st->stream_len = cpr_get64(buf + HS_STREAM_LEN);
    st->start_ns = cpr_get64(buf + HS_START);
    st->end_ns = cpr_get64(buf + HS_END);
    if (st->state < CPR_HS_RUNNING || st->state > CPR_HS_FAILED ||
        !cpr_get_str(buf + HS_ID, CPR_HS_ID_LEN, st->id) ||
        !cpr_get_str(buf + HS_MSG, CPR_HS_MSG_LEN, st->message)) {
        memset(st, 0, sizeof(*st));
        return CPR_DECODE_BAD;
    }
    return CPR_DECODE_OK;
}

int cpr_hs_read(int fd, CprHelperStatus *st, CprDecode *state)
{
    uint8_t buf[CPR_HS_LOCK_LEN];

    if (cpr_pread_full(fd, buf, sizeof(buf), CPR_HS_OFFSET) < 0) {
        return -1;
    }
    *state = cpr_hs_decode(buf, sizeof(buf), st);
    return 0;
}

int cpr_hs_write(int fd, const CprHelperStatus *st)
{
    uint8_t buf[CPR_HS_SIZE];
    size_t done = 0;

    cpr_hs_encode(st, buf);
    while (done < sizeof(buf)) {
        ssize_t n = pwrite(fd, buf + done, sizeof(buf) - done,
                           (off_t)(CPR_HS_OFFSET + done));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static struct flock hs_range(short type)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));     /* l_pid must be 0 for OFD locks */
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = CPR_HS_OFFSET;
    fl.l_len = CPR_HS_LOCK_LEN;
    return fl;
}

/*
 * Polled rather than F_OFD_SETLKW: a deadline needs no signal, and the
 * cost of a 10 ms poll is nothing next to a save.
 */
int cpr_hs_lock(int fd, short type, int64_t timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : cpr_monotonic_ms() + timeout_ms;
    const struct timespec pause = { 0, 10 * 1000 * 1000 };

    for (;;) {
        struct flock fl = hs_range(type);

        if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
            return 0;
        }
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            return -1;
        }
        if (deadline >= 0 && cpr_monotonic_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}

void cpr_hs_unlock(int fd)
{
    struct flock fl = hs_range(F_UNLCK);

    fcntl(fd, F_OFD_SETLK, &fl);
}

bool cpr_hs_write_locked(int fd)
{
    struct flock fl = hs_range(F_RDLCK);

    /* Conflicts with a read lock only if someone holds the write lock. */
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

const char *cpr_hs_state_name(uint32_t state)
{
    switch (state) {
    case CPR_HS_RUNNING: return "running";
    case CPR_HS_COMMITTED: return "committed";
    case CPR_HS_FAILED: return "failed";
    default: return "unknown";
    }
}
