/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem wait: QEMU reports an exec: save "completed" before the
 * helper commits it; wait tells when the last save (or the one named by
 * --id) has ended, and whether it committed.
 */
#include "tool.h"
#include "clean-text.h"
#include "helper-status.h"
#include "last-save.h"
#include "metadata.h"
#include "tool-open.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long `wait --id` waits for that attempt to start, unless
 * --timeout says otherwise. */
#define ID_START_MS 60000

/* mono_ms -- CLOCK_MONOTONIC, ms: for --timeout. */
static int64_t mono_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

/* open_image_ro -- @path read-only if it is an image; -1 (said) if not. */
static int open_image_ro(const char *path)
{
    uint8_t sb_buf[CPR_SB_SIZE];
    CprSuperblock sb;
    struct stat st;
    int fd = tool_open_ro(path, &st);

    if (fd == -1) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    if (fd < 0 ||
        pread(fd, sb_buf, sizeof(sb_buf), 0) != (ssize_t)sizeof(sb_buf) ||
        cpr_sb_decode(sb_buf, sizeof(sb_buf), &sb) != CPR_DECODE_OK) {
        fprintf(stderr, "%s: not a pmem CPR image\n", path);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/*
 * Read the status under a read lock: a live helper holds the write lock
 * until it has recorded its outcome, so this waits for it.  0 with the
 * status, 1 if nothing (valid) is recorded, -1 on timeout or error.
 */
static int read_settled(int fd, int64_t deadline, CprHelperStatus *st,
                        CprDecode *dec)
{
    int64_t left = deadline < 0 ? -1 : MAX(deadline - mono_ms(), 0);

    if (cpr_hs_lock(fd, F_RDLCK, left) < 0) {
        return -1;
    }
    if (cpr_hs_read(fd, st, dec) < 0) {
        cpr_hs_unlock(fd);
        return -1;
    }
    cpr_hs_unlock(fd);
    return *dec == CPR_DECODE_OK ? 0 : 1;
}

/* report -- the outcome: a commit on stdout, a failure on stderr. */
static void report(const char *path, CprHelperStatus *st, uint32_t state)
{
    char idtext[CPR_HS_ID_LEN + 8] = "";

    if (st->id[0]) {
        snprintf(idtext, sizeof(idtext), ", id %s", st->id);
    }
    if (state == CPR_HS_COMMITTED) {
        printf("%s: committed generation %" PRIu64 " (%" PRIu64 " bytes; "
               "save attempt %" PRIu64 "%s, pid %u)%s%s\n", path,
               st->generation, st->stream_len, st->attempt, idtext, st->pid,
               st->message[0] ? ": " : "", st->message);
    } else {
        char *m = tool_clean(st->message);

        fprintf(stderr, "%s: save failed, generation %" PRIu64 " not "
                "committed (save attempt %" PRIu64 "%s, pid %u): %s\n",
                path, st->generation, st->attempt, idtext, st->pid, m);
        g_free(m);
    }
}

/* tool_wait -- cpr-pmem wait: until the save ended, and its outcome. */
int tool_wait(const char *path, const char *id, int64_t timeout_s)
{
    int64_t start = mono_ms();
    int64_t deadline = timeout_s < 0 ? -1 : start + timeout_s * 1000;
    int64_t id_deadline = timeout_s < 0 ? start + ID_START_MS : deadline;
    const struct timespec pause = { 0, 20 * 1000 * 1000 };
    CprHelperStatus st;
    CprDecode dec;
    uint32_t state;
    int fd = open_image_ro(path);
    int rc;

    if (fd < 0) {
        return TOOL_USAGE;
    }
    for (;;) {
        rc = read_settled(fd, deadline, &st, &dec);
        if (rc < 0) {
            if (errno == ETIMEDOUT) {
                CprDecode d2;

                cpr_hs_read(fd, &st, &d2);
                fprintf(stderr, "%s: still saving after %" PRId64 " s (save "
                        "attempt %" PRIu64 ", pid %u)\n", path, timeout_s,
                        st.attempt, st.pid);
            } else {
                fprintf(stderr, "%s: cannot read the save status: %s\n",
                        path, strerror(errno));
            }
            close(fd);
            return TOOL_NO_OUTCOME;
        }
        /* With --id, wait for that attempt to start (QEMU may not have
         * run the helper yet). */
        if (rc == 0 && (!id || !strcmp(st.id, id))) {
            break;
        }
        if (!id || mono_ms() >= id_deadline) {
            if (id) {
                fprintf(stderr, "%s: no save with id %s started (the last "
                        "recorded: %s)\n", path, id,
                        rc ? "none" : st.id[0] ? st.id : "without an id");
            } else if (dec == CPR_DECODE_EMPTY) {
                fprintf(stderr, "%s: no exec: save recorded: cpr-pmem save "
                        "never ran on this image\n", path);
            } else {
                fprintf(stderr, "%s: the save status is %s\n", path,
                        dec == CPR_DECODE_TOO_NEW ? "of a newer cpr-pmem"
                                                  : "damaged");
            }
            close(fd);
            return TOOL_NO_OUTCOME;
        }
        nanosleep(&pause, NULL);
    }
    /* Read under the read lock: no live helper holds the write lock. */
    state = last_save_outcome(fd, &st, false);
    close(fd);
    report(path, &st, state);
    return state == CPR_HS_COMMITTED ? TOOL_OK : TOOL_REFUSED;
}
