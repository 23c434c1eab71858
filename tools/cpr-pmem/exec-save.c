/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem save: QEMU's exec: migration (migrate "exec:cpr-pmem save
 * IMAGE") from stdin into a new save of IMAGE, committed at the end of
 * input only if the stream is complete, its progress and outcome in the
 * image's status block for `wait` and `info` (docs/exec-helper.md).
 */
#include "exec.h"
#include "tool.h"
#include "binding.h"
#include "errmsg.h"
#include "helper-status.h"
#include "image-file.h"
#include "metadata.h"
#include "parent-vm.h"
#include "stream-config.h"
#include "stream-end.h"
#include "tool-open.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a new save waits for the previous helper to let go of the
 * status block (it holds it only to write its outcome). */
#define STATUS_LOCK_MS 5000

/* tool_id_valid -- a save's --id: what the status block holds, no shell
 * or terminal syntax. */
bool tool_id_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= CPR_HS_ID_LEN) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("._:@+-", *p)) {
            return false;
        }
    }
    return true;
}

/*
 * status_fd -- a second descriptor for the file the writer holds, for the
 * status block.  Never reopened by the path: whoever can write the image
 * directory can make that name a symlink to any file between the
 * writer's open and ours.  The writer's own file, reopened through its
 * descriptor, and a regular file before anything is written to it.
 */
static int status_fd(CprWriter *w, const char *path, char **errp)
{
    int fd = cpr_writer_reopen_rw(w);
    struct stat st;

    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open for the save status");
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cpr_error(errp, path, "is not a regular file");
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct Save {
    const char *path;
    CprWriter *w;
    int fd;                     /* status block; OFD write lock held */
    CprHelperStatus st;
    CprStreamEnd end;
    ParentVm pv;                /* the QEMU that runs us, if one does */
    bool has_vm;
    uint8_t head[CPR_STREAM_CONFIG_MAX];    /* the stream's start */
    size_t head_len;
} Save;

/* set_status -- the attempt's state in the status block, for wait. */
static void set_status(Save *s, uint32_t state, const char *message)
{
    s->st.state = state;
    s->st.stream_len = s->end.len;
    if (state != CPR_HS_RUNNING) {
        s->st.end_ns = cpr_realtime_ns();
    }
    cpr_hs_copy_str(s->st.message, sizeof(s->st.message),
                    message ? message : "");
    if (cpr_hs_write(s->fd, &s->st) < 0 ||
        (state != CPR_HS_RUNNING && fdatasync(s->fd) < 0)) {
        /* Informational: the save's outcome does not depend on it. */
        fprintf(stderr, "cpr-pmem save: %s: cannot record the save's "
                "status: %s\n", s->path, strerror(errno));
    }
}

/* Open the image for the save and record the attempt as running. */
static int save_begin(Save *s, const char *id, char **errp)
{
    CprHost host = { CPR_HS_QEMU_VERSION, exec_warn, "cpr-pmem save" };
    CprHelperStatus prev;
    CprDecode dec;

    int found = parent_vm_find(&s->pv, errp);

    /* QEMU tells an exec: helper nothing: its VM is found through /proc
     * (parent-vm.h).  Not run by a QEMU: nothing to bind. */
    if (found < 0) {
        return -1;
    }
    s->has_vm = found > 0;
    if (!s->has_vm) {
        fprintf(stderr, "cpr-pmem save: %s: warning: not run by a QEMU: the "
                "image binds no RAM and no command line\n", s->path);
    }
    s->w = cpr_writer_open_vm(s->path, &host, s->has_vm ? &s->pv.vm : NULL,
                              errp);
    if (!s->w) {
        return -1;
    }
    s->fd = status_fd(s->w, s->path, errp);
    if (s->fd < 0) {
        return -1;
    }
    if (cpr_hs_lock(s->fd, F_WRLCK, STATUS_LOCK_MS) < 0) {
        cpr_error_errno(errp, s->path, errno, "cannot lock the save status");
        return -1;
    }
    if (cpr_hs_read(s->fd, &prev, &dec) < 0) {
        cpr_error_errno(errp, s->path, errno, "cannot read");
        return -1;
    }
    s->st.attempt = (dec == CPR_DECODE_OK ? prev.attempt : 0) + 1;
    s->st.pid = (uint32_t)getpid();
    s->st.generation = cpr_writer_generation(s->w);
    /* Wall clock: instants shown as dates and compared with the commit
     * record's ctime (last-save.c), never subtracted for a duration. */
    s->st.start_ns = cpr_realtime_ns();
    cpr_hs_copy_str(s->st.id, sizeof(s->st.id), id ? id : "");
    set_status(s, CPR_HS_RUNNING, NULL);
    return 0;
}

/*
 * image_for_status -- @path opened read-write for its status block only
 * if it is a regular file with a valid superblock (a pmem image), never
 * a device or another file reached by a name planted there
 * (tool-open.h).  Sets *@newest to its newest intact generation (0:
 * none).  -1 if not.
 */
static int image_for_status(const char *path, uint64_t *newest)
{
    uint8_t header[CPR_HEADER_SIZE];
    CprSuperblock sb;
    CprSlots slots;
    struct stat st;
    int fd = tool_open_regular(path, O_RDWR | O_NONBLOCK, &st);

    if (fd < 0) {
        return -1;
    }
    if (cpr_pread_full(fd, header, sizeof(header), 0) !=
            (ssize_t)sizeof(header) ||
        cpr_sb_decode(header, CPR_SB_SIZE, &sb) != CPR_DECODE_OK) {
        close(fd);
        return -1;
    }
    cpr_slots_decode(header, &slots);
    *newest = slots.newest >= 0 ? slots.rec[slots.newest].generation : 0;
    return fd;
}

/*
 * record_early_failure -- a save that failed before it could record
 * itself as running (the image in use, a lock, a refusal) still records
 * its failure, so that `wait` never reports an older save's commit as
 * the newest outcome; unless a live helper holds the status (it is the
 * newer attempt then) or the file is not an image.
 */
static void record_early_failure(const char *path, const char *id,
                                 const char *why)
{
    CprHelperStatus prev, st = { 0 };
    CprDecode dec;
    uint64_t newest;
    int fd = image_for_status(path, &newest);

    if (fd < 0) {
        return;
    }
    if (cpr_hs_lock(fd, F_WRLCK, 0) == 0 &&
        cpr_hs_read(fd, &prev, &dec) == 0) {
        st.attempt = (dec == CPR_DECODE_OK ? prev.attempt : 0) + 1;
        st.state = CPR_HS_FAILED;
        st.pid = (uint32_t)getpid();
        st.generation = newest + 1;
        st.start_ns = st.end_ns = cpr_realtime_ns();
        cpr_hs_copy_str(st.id, sizeof(st.id), id ? id : "");
        cpr_hs_copy_str(st.message, sizeof(st.message), why);
        if (cpr_hs_write(fd, &st) < 0 || fdatasync(fd) < 0) {
            /* Informational, as set_status() says. */
        }
    }
    close(fd);
}

/* Read the stream to its end; -1 with *@why if the save cannot go on. */
static int save_stream(Save *s, const sigset_t *wait_mask, char **why)
{
    uint8_t *buf = g_malloc(EXEC_IO_CHUNK);
    char *err = NULL;
    int ret = -1;

    if (cpr_writer_populate(s->w, &err) < 0) {
        *why = err;
        goto out;
    }
    for (;;) {
        ssize_t n = exec_input_read(buf, EXEC_IO_CHUNK, wait_mask, why);

        if (n < 0) {
            goto out;
        }
        if (n == 0) {
            break;
        }
        cpr_stream_end_feed(&s->end, buf, (size_t)n);
        if (s->head_len < sizeof(s->head)) {
            size_t k = MIN((size_t)n, sizeof(s->head) - s->head_len);

            memcpy(s->head + s->head_len, buf, k);
            s->head_len += k;
        }
        if (cpr_writer_append(s->w, buf, (size_t)n, &err) < 0) {
            *why = err;
            goto out;
        }
    }
    ret = 0;
out:
    g_free(buf);
    return ret;
}

/*
 * The VM to record at the commit: the RAM blocks only if x-ignore-shared
 * left them in place (the hook lists only those); with the stream
 * carrying all RAM, none, and the command line still.
 */
static const CprVm *commit_vm(Save *s, CprVm *vm)
{
    if (!s->has_vm) {
        return NULL;
    }
    if (cpr_stream_ignores_shared(s->head, s->head_len) == 0) {
        s->pv.qemu.nr_ram = 0;
    }
    *vm = s->pv.vm;
    return vm;
}

/* tool_save -- cpr-pmem save: stdin into a new save of @path (exec.h). */
int tool_save(const char *path, const char *id)
{
    Save s = { .path = path, .fd = -1 };
    CprVm vm;
    sigset_t wait_mask;
    char *err = NULL, *why = NULL;
    int ret = TOOL_REFUSED;

    cpr_stream_end_init(&s.end);
    if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "cpr-pmem save: reads a migration stream from "
                "stdin: run it as QEMU's exec: command\n");
        return TOOL_USAGE;
    }
    exec_input_setup(&wait_mask);
    if (save_begin(&s, id, &err) < 0) {
        /* Never recorded as running: record the failure where that is
         * safe, with the writer and the status descriptor gone. */
        fprintf(stderr, "cpr-pmem save: %s\n", err);
        cpr_writer_close(s.w);
        s.w = NULL;
        if (s.fd >= 0) {
            close(s.fd);
            s.fd = -1;
        }
        record_early_failure(path, id, err);
        goto out;
    }
    if (save_stream(&s, &wait_mask, &why) == 0 &&
        cpr_stream_end_check(&s.end, &why) == 0 &&
        cpr_writer_commit_vm(s.w, commit_vm(&s, &vm), &err) < 0) {
        why = err;
        err = NULL;
    }
    if (why) {
        cpr_writer_abort(s.w);
        set_status(&s, CPR_HS_FAILED, why);
        fprintf(stderr, "cpr-pmem save: %s: not committed (generation "
                "%" PRIu64 "): %s; the previous image stays the loadable "
                "one\n", path, s.st.generation, why);
        goto out;
    }
    set_status(&s, CPR_HS_COMMITTED, NULL);
    fprintf(stderr, "cpr-pmem save: %s: committed generation %" PRIu64
            " (%" PRIu64 " bytes)\n", path, s.st.generation, s.end.len);
    ret = TOOL_OK;
out:
    /* Close the writer first: the status lock goes last. */
    cpr_writer_close(s.w);
    if (s.fd >= 0) {
        close(s.fd);
    }
    cpr_stream_end_free(&s.end);
    parent_vm_free(&s.pv);
    free(err);
    free(why);
    return ret;
}
