/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem as an exec: migration helper for a QEMU without the transport
 * hook (docs/exec-helper.md):
 *
 *   migrate "exec:cpr-pmem save IMAGE"           stdin -> a new save
 *   migrate_incoming "exec:cpr-pmem load IMAGE"  verified image -> stdout
 *   cpr-pmem wait IMAGE                          until that save ended
 *
 * QEMU starts the helper through /bin/sh -c, its stdin and stdout are
 * pipes to QEMU, its stderr is QEMU's (so messages land in QEMU's log).
 * When QEMU closes the migration channel it closes its pipe ends and then
 * waits for the helper to exit (io/channel-command.c); it reports
 * "completed" before that, so the helper's commit happens after it.
 */
#include "tool.h"
#include "binding.h"
#include "errmsg.h"
#include "helper-status.h"
#include "image-file.h"
#include "metadata.h"
#include "parent-vm.h"
#include "reader.h"
#include "stream-config.h"
#include "stream-end.h"
#include "vmdesc.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IO_CHUNK (1u << 20)
/* How long a new save waits for the previous helper to let go of the
 * status block (it holds it only to write its outcome). */
#define STATUS_LOCK_MS 5000
/* How long `wait --id` waits for that attempt to start, unless
 * --timeout says otherwise. */
#define ID_START_MS 60000

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

static void warn_stderr(void *opaque, const char *msg)
{
    fprintf(stderr, "%s: warning: %s\n", (const char *)opaque, msg);
}

/* ---- save ---------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/*
 * SIGTERM, SIGINT and SIGHUP end the save as failed (recorded), not the
 * process: they are blocked except while the helper waits for input, so
 * the commit itself is never interrupted.
 */
static void setup_signals(sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;    /* no SA_RESTART: ppoll returns */
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (int i = 0, sigs[] = { SIGTERM, SIGINT, SIGHUP }; i < 3; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&block, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGHUP);
}

/*
 * Whether a stop signal came: delivered (the handler ran in ppoll), or
 * pending (ppoll returns a ready pipe rather than deliver it, and the
 * signal is blocked again when it returns).  Sets *@why.
 */
static bool stopped(const sigset_t *wait_mask, char **why)
{
    sigset_t pending;

    if (!stop_signal && sigpending(&pending) == 0) {
        for (int sig = 1; sig < NSIG; sig++) {
            if (sigismember(&pending, sig) && !sigismember(wait_mask, sig)) {
                stop_signal = sig;
            }
        }
    }
    if (stop_signal) {
        *why = g_strdup_printf("stopped by signal %d (%s) while reading the "
                               "stream", (int)stop_signal,
                               strsignal(stop_signal));
    }
    return stop_signal != 0;
}

/*
 * read() from stdin, or -1 with *@why; a stop signal ends it.  A signal
 * sent before QEMU's end of the pipe closed is seen before the EOF.
 */
static ssize_t read_input(void *buf, size_t len, const sigset_t *wait_mask,
                          char **why)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

    for (;;) {
        ssize_t n;

        if (stopped(wait_mask, why)) {
            return -1;
        }
        if (ppoll(&pfd, 1, NULL, wait_mask) < 0) {
            if (errno == EINTR) {
                continue;
            }
            *why = g_strdup_printf("cannot wait for the stream: %s",
                                   strerror(errno));
            return -1;
        }
        n = read(STDIN_FILENO, buf, len);
        if (n >= 0) {
            return stopped(wait_mask, why) ? -1 : n;
        }
        if (errno != EINTR && errno != EAGAIN) {
            *why = g_strdup_printf("cannot read the stream: %s",
                                   strerror(errno));
            return -1;
        }
    }
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
    CprHost host = { CPR_HS_QEMU_VERSION, warn_stderr, "cpr-pmem save" };
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
    s->st.start_ns = cpr_realtime_ns();
    cpr_hs_copy_str(s->st.id, sizeof(s->st.id), id ? id : "");
    set_status(s, CPR_HS_RUNNING, NULL);
    return 0;
}

/*
 * image_for_status -- @path opened read-write for its status block only
 * if it is a regular file with a valid superblock (a pmem image), never
 * a device or another file reached by a name planted there: opened
 * O_PATH first, its type checked, then reopened through that descriptor.
 * Sets *@newest to its newest intact generation (0: none).  -1 if not.
 */
static int image_for_status(const char *path, uint64_t *newest)
{
    uint8_t header[CPR_HEADER_SIZE];
    CprSuperblock sb;
    CprSlots slots;
    struct stat st;
    char proc[64];
    int pfd = open(path, O_PATH | O_CLOEXEC), fd;

    if (pfd < 0) {
        return -1;
    }
    if (fstat(pfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(pfd);
        return -1;
    }
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
    fd = open(proc, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    close(pfd);
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
    uint8_t *buf = g_malloc(IO_CHUNK);
    char *err = NULL;
    int ret = -1;

    if (cpr_writer_populate(s->w, &err) < 0) {
        *why = err;
        goto out;
    }
    for (;;) {
        ssize_t n = read_input(buf, IO_CHUNK, wait_mask, why);

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
    setup_signals(&wait_mask);
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

/* ---- load ---------------------------------------------------------- */

static int write_full(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * QEMU's exec: incoming channel starts reading only once its pipe is
 * readable, and a bare EOF never makes it so: it would wait in "setup"
 * for ever.  So a refusal sends QEMU four zero bytes, which no image
 * holds (a stream starts with "QEVM"): QEMU fails at once, "Not a
 * migration stream", and the reason is in its log from us.  Only to a
 * pipe or socket, not into a file someone redirected stdout to.
 */
static void fail_qemu(void)
{
    static const uint8_t not_a_stream[4];
    struct stat st;

    if (fstat(STDOUT_FILENO, &st) == 0 &&
        (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        if (write(STDOUT_FILENO, not_a_stream, sizeof(not_a_stream)) < 0) {
            /* QEMU is gone already. */
        }
    }
}

/*
 * The binding check plugin.c's in_open makes (binding-check.c), against
 * the QEMU that runs us: -1 with *@errp to refuse.
 */
static int check_vm(const char *path, CprReader *r, char **errp)
{
    CprHost host = { CPR_HS_QEMU_VERSION, warn_stderr, "cpr-pmem load" };
    const CprVmdesc *d = cpr_reader_vmdesc(r);
    const CprRecord *rec = cpr_reader_record(r);
    uint8_t head[CPR_STREAM_CONFIG_MAX];
    ParentVm pv;
    ssize_t n;
    int found = parent_vm_find(&pv, errp), ret;

    if (found < 0) {
        return -1;
    }
    if (!found) {
        fprintf(stderr, "cpr-pmem load: %s: warning: not run by a QEMU: its "
                "RAM and command line are not checked\n", path);
        return 0;
    }
    if (d && !parent_vm_argv_is_qemu(d->argv, d->argv_len)) {
        fprintf(stderr, "cpr-pmem load: %s: warning: generation %" PRIu64
                " was saved by an exec: helper that did not record its VM: "
                "the RAM and the command line are not checked\n", path,
                rec->generation);
        parent_vm_free(&pv);
        return 0;
    }
    /* The stream carries all RAM (no x-ignore-shared): none to check. */
    n = cpr_reader_pread(r, 0, head, sizeof(head), errp);
    if (n < 0) {
        parent_vm_free(&pv);
        return -1;
    }
    if (d && cpr_stream_ignores_shared(head, (size_t)n) == 0) {
        pv.qemu.nr_ram = 0;
    }
    /* The machine type and CPU model QEMU resolved are unknown here; a
     * pmem: save recorded them: not compared (the command line is). */
    if (d) {
        pv.qemu.machine = d->machine;
        pv.qemu.cpu = d->cpu;
        if (strcmp(d->qemu_version, CPR_HS_QEMU_VERSION)) {
            host.qemu_version = d->qemu_version;
        }
    }
    ret = cpr_binding_verify(path, rec, d, &host, &pv.vm, errp);
    parent_vm_free(&pv);
    return ret;
}

int tool_load(const char *path)
{
    CprReader *r;
    uint64_t sent = 0, total;
    uint8_t *buf;
    char *err = NULL;
    int ret = TOOL_REFUSED;

    /* QEMU may stop reading (a failed load): EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr, "cpr-pmem load: writes a migration stream to "
                "stdout: run it as QEMU's exec: command\n");
        return TOOL_USAGE;
    }
    r = cpr_reader_open(path, &err);
    if (!r) {
        fprintf(stderr, "cpr-pmem load: %s; nothing of it was sent to "
                "QEMU\n", err);
        free(err);
        fail_qemu();
        return access(path, F_OK) == 0 ? TOOL_REFUSED : TOOL_USAGE;
    }
    total = cpr_reader_record(r)->stream_len;
    if (check_vm(path, r, &err) < 0) {
        fprintf(stderr, "cpr-pmem load: %s\n", err);
        fprintf(stderr, "cpr-pmem load: %s: nothing of it was sent to "
                "QEMU\n", path);
        free(err);
        cpr_reader_close(r);
        fail_qemu();
        return TOOL_REFUSED;
    }
    fprintf(stderr, "cpr-pmem load: %s: generation %" PRIu64 " verified "
            "(%" PRIu64 " bytes), sending it\n", path,
            cpr_reader_record(r)->generation, total);
    buf = g_malloc(IO_CHUNK);
    for (;;) {
        ssize_t n = cpr_reader_read(r, buf, IO_CHUNK, &err);

        if (n < 0) {
            fprintf(stderr, "cpr-pmem load: %s (after %" PRIu64 " of %"
                    PRIu64 " bytes)\n", err, sent, total);
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (write_full(STDOUT_FILENO, buf, (size_t)n) < 0) {
            fprintf(stderr, "cpr-pmem load: %s: QEMU stopped reading after "
                    "%" PRIu64 " of %" PRIu64 " bytes: %s\n", path, sent,
                    total, strerror(errno));
            goto out;
        }
        sent += (uint64_t)n;
    }
    ret = TOOL_OK;
out:
    /* EOF for QEMU now, before the reader's cleanup. */
    close(STDOUT_FILENO);
    g_free(buf);
    free(err);
    cpr_reader_close(r);
    return ret;
}

/* ---- wait and info ------------------------------------------------- */

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

/*
 * The outcome of the attempt @st describes, as `wait` and `info` report
 * it: its state, or for a dead helper's "running", committed or failed.
 */
static uint32_t outcome(int fd, CprHelperStatus *st, bool live)
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

static int64_t mono_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

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
    state = outcome(fd, &st, false);
    close(fd);
    report(path, &st, state);
    return state == CPR_HS_COMMITTED ? TOOL_OK : TOOL_REFUSED;
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
    *state = outcome(fd, st, *live);
    close(fd);
    return true;
}

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

void tool_add_exec_status(JsonBuilder *b, const char *path)
{
    CprHelperStatus st;
    uint32_t state;
    bool live;
    char *m;

    if (!last_attempt(path, &st, &state, &live)) {
        return;
    }
    json_builder_set_member_name(b, "exec-save");
    json_builder_begin_object(b);
    tool_add_u64(b, "attempt", st.attempt);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, cpr_hs_state_name(state));
    tool_add_u64(b, "generation", st.generation);
    tool_add_u64(b, "pid", st.pid);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, st.id);
    tool_add_u64(b, "started-ns", st.start_ns);
    tool_add_u64(b, "ended-ns", st.end_ns);
    tool_add_u64(b, "stream-bytes", st.stream_len);
    m = tool_clean(st.message);
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, m);
    g_free(m);
    json_builder_end_object(b);
}
