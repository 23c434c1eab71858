/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The last exec: save attempt on an image, as its status block and
 * commit records tell it (helper-status.h): what `wait` reports, and
 * what `info` shows of it.
 */
#include "last-save.h"
#include "clean-text.h"
#include "json-report.h"
#include "metadata.h"
#include "tool-open.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A "running" status whose lock nobody holds: the helper is gone.  It
 * may have died after its commit but before recording it; the record
 * tells (the generation it was to commit, written by a helper, after the
 * attempt started).
 */
static bool committed_anyway(int fd, const CprHelperStatus *st)
{
    uint8_t header[CPR_HEADER_SIZE];
    CprSlots slots;
    ssize_t n = pread(fd, header, sizeof(header), 0);

    if (n != (ssize_t)sizeof(header)) {
        return false;
    }
    cpr_slots_decode(header, &slots);
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        const CprRecord *r = &slots.rec[i];

        if (slots.state[i] == CPR_DECODE_OK &&
            r->generation == st->generation &&
            !(r->flags & CPR_REC_FLAG_INVALIDATED) &&
            !strcmp(r->qemu_version, CPR_HS_QEMU_VERSION) &&
            r->ctime_ns >= st->start_ns) {
            return true;
        }
    }
    return false;
}

/* last_save_outcome -- see last-save.h. */
uint32_t last_save_outcome(int fd, CprHelperStatus *st, bool live)
{
    if (st->state != CPR_HS_RUNNING || live) {
        return st->state;
    }
    if (committed_anyway(fd, st)) {
        snprintf(st->message, sizeof(st->message), "the helper (pid %u) "
                 "ended after its commit, before it recorded that",
                 st->pid);
        return CPR_HS_COMMITTED;
    }
    snprintf(st->message, sizeof(st->message), "the helper (pid %u) ended "
             "without finishing the save (killed, or the host went down)",
             st->pid);
    return CPR_HS_FAILED;
}

/* The last attempt, if one is recorded: for `info`. */
static bool last_attempt(const char *path, CprHelperStatus *st,
                         uint32_t *state, bool *live)
{
    CprDecode dec;
    struct stat sb;
    int fd = tool_open_ro(path, &sb);

    if (fd < 0) {
        return false;
    }
    if (cpr_hs_read(fd, st, &dec) < 0 || dec != CPR_DECODE_OK) {
        close(fd);
        return false;
    }
    *live = cpr_hs_write_locked(fd);
    *state = last_save_outcome(fd, st, *live);
    close(fd);
    return true;
}

/* tool_print_exec_status -- the last attempt, in info's words. */
void tool_print_exec_status(const char *path)
{
    CprHelperStatus st;
    uint32_t state;
    bool live;
    char t[64];

    if (!last_attempt(path, &st, &state, &live)) {
        return;
    }
    printf("last exec: save (cpr-pmem save): attempt %" PRIu64 ", %s%s\n",
           st.attempt, cpr_hs_state_name(state),
           state == CPR_HS_RUNNING ? " now" : "");
    printf("  generation: %" PRIu64 "\n", st.generation);
    printf("  helper pid: %u\n", st.pid);
    if (st.id[0]) {
        printf("  id: %s\n", st.id);
    }
    cpr_format_utc_ns(st.start_ns, t, sizeof(t));
    printf("  started: %s\n", t);
    if (state != CPR_HS_RUNNING) {
        if (st.end_ns) {
            cpr_format_utc_ns(st.end_ns, t, sizeof(t));
            printf("  ended: %s\n", t);
        }
        printf("  stream bytes: %" PRIu64 "\n", st.stream_len);
    }
    if (st.message[0]) {
        char *m = tool_clean(st.message);

        printf("  message: %s\n", m);
        g_free(m);
    }
}

/* tool_add_exec_status -- the last attempt as info's "exec-save". */
void tool_add_exec_status(JsonBuilder *b, const char *path)
{
    CprHelperStatus st;
    uint32_t state;
    bool live;

    if (!last_attempt(path, &st, &state, &live)) {
        return;
    }
    json_builder_set_member_name(b, "exec-save");
    json_builder_begin_object(b);
    report_add_u64(b, "attempt", st.attempt);
    report_add_str(b, "state", cpr_hs_state_name(state));
    report_add_u64(b, "generation", st.generation);
    report_add_u64(b, "pid", st.pid);
    report_add_str(b, "id", st.id);
    report_add_u64(b, "started-ns", st.start_ns);
    report_add_u64(b, "ended-ns", st.end_ns);
    report_add_u64(b, "stream-bytes", st.stream_len);
    report_add_clean(b, "message", st.message);
    json_builder_end_object(b);
}
