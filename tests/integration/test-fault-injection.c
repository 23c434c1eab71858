/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's glue under a transport that fails, shortens and counts its calls
 * (transport-fault.c), with mapped-ram and 2 multifd channels, 64 MiB of
 * patterned RAM, the halting guest:
 *
 *   - every write of a save fails once, twice over: the migration fails,
 *     QEMU runs on, the transport commits nothing and aborts, and the
 *     last committed image stays; so for the k-th write of each thread
 *     (each multifd channel);
 *   - a short write, 0 from a write, a count larger than asked: the same;
 *   - short reads at every call: the restore loads every page;
 *   - a stream that ends early: the restore fails with a message, the
 *     destination exits, no signal;
 *   - migration mode cpr-exec (QEMU 10.2): refused before anything is
 *     written.
 *
 * A crash, a "completed" after a failed write or a page that differs
 * after the restore fails the test.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>
#include <sys/stat.h>

#define RAM_SIZE    "64M"
#define FILL_ADDR   (16ULL << 20)       /* 48 MiB of patterned pages */
#define FILL_CHUNKS 48
#define CHUNK       (1ULL << 20)
#define TIMEOUT_MS  60000

static const CprSetup setup = {
    .mapped_ram = TRUE, .multifd_channels = 2,
};

typedef struct {
    char *dir;
    char *state;                /* the image's path */
    char *plugin_copy;
    QemuProc *src;
    struct stat committed;      /* the image as the clean save left it */
    long long writes;           /* writes of a whole save */
    long long thread_writes;    /* the most writes of one thread */
} Fixture;

/* Every byte of page @page: non-zero pages, each its own. */
static void fill_chunk(guint8 *buf, guint c)
{
    for (gsize i = 0; i < CHUNK; i++) {
        guint64 page = (FILL_ADDR + c * CHUNK + i) >> 12;

        buf[i] = (guint8)(page * 7 + (i >> 9) + 1);
    }
}

static void write_pattern(Qtest *qt)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);
    GError *err = NULL;

    for (guint c = 0; c < FILL_CHUNKS; c++) {
        fill_chunk(buf, c);
        qtest_b64write(qt, FILL_ADDR + c * CHUNK, buf, CHUNK, &err);
        g_assert_no_error(err);
    }
}

/* Pages that differ from the pattern. */
static guint lost_pages(Qtest *qt)
{
    g_autofree guint8 *want = g_malloc(CHUNK);
    g_autofree guint8 *got = g_malloc(CHUNK);
    GError *err = NULL;
    guint bad = 0;

    for (guint c = 0; c < FILL_CHUNKS; c++) {
        fill_chunk(want, c);
        qtest_b64read(qt, FILL_ADDR + c * CHUNK, got, CHUNK, &err);
        g_assert_no_error(err);
        for (gsize off = 0; off < CHUNK; off += 4096) {
            bad += memcmp(want + off, got + off, 4096) != 0;
        }
    }
    return bad;
}

/* The transport's log, one line per closed handle. */
static GStrv log_lines(const Fixture *f)
{
    g_autofree char *log = g_strconcat(f->state, ".log", NULL);
    g_autofree char *text = NULL;

    if (!g_file_get_contents(log, &text, NULL, NULL)) {
        return g_new0(char *, 1);
    }
    return g_strsplit(g_strchomp(text), "\n", -1);
}

/* The source runs on; if it died, how (128 + the signal that killed it). */
static void assert_alive(Fixture *f, const char *opt)
{
    g_autofree char *log = NULL;
    int status = -1;

    if (qemu_proc_running(f->src)) {
        return;
    }
    qemu_proc_wait(f->src, TIMEOUT_MS, &status, NULL);
    log = qemu_proc_log(f->src);
    g_error("%s: the source QEMU died, status %d:\n%s", opt, status, log);
}

/*
 * The line of the handle closed after @before lines, polled for (QEMU
 * closes the channel in its clean-up, after it reported the outcome),
 * e.g. "out writes=...".  A QMP command after it runs after the clean-up.
 */
static char *next_log_line(Fixture *f, guint before, Qmp *qmp,
                           const char *opt)
{
    g_autoptr(JsonNode) info = NULL;
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_MS * 1000LL;
    g_autofree char *status = NULL;
    GError *err = NULL;

    for (;;) {
        g_auto(GStrv) lines = log_lines(f);

        assert_alive(f, opt);
        if (g_strv_length(lines) > before) {
            status = qmp_query_status(qmp, &err);
            g_assert_no_error(err);
            return g_strdup(lines[before]);
        }
        if (g_get_monotonic_time() > deadline) {
            info = qmp_execute(qmp, "query-migrate", NULL, &err);
            g_error("the transport's handle was not closed after %u ms: %s",
                    TIMEOUT_MS, info ? json_to_string(info, FALSE) : "?");
        }
        g_usleep(1000);
    }
}

static guint log_count(const Fixture *f)
{
    g_auto(GStrv) lines = log_lines(f);

    return g_strv_length(lines);
}

static long long log_field(const char *line, const char *name)
{
    g_autofree char *key = g_strconcat(name, "=", NULL);
    const char *p = strstr(line, key);

    g_assert_nonnull(p);
    return g_ascii_strtoll(p + strlen(key), NULL, 10);
}

static char *uri_with(const Fixture *f, const char *opt)
{
    return opt ? g_strdup_printf("test-fault:%s,%s", f->state, opt)
               : g_strdup_printf("test-fault:%s", f->state);
}

static QemuProc *start(Fixture *f, const char *ram, const char *name,
                       const char *incoming)
{
    g_auto(GStrv) args = halt_vm_args(f->dir, ram, RAM_SIZE);
    g_autofree char *copy = NULL;
    GError *err = NULL;
    QemuProc *p;

    p = halt_vm_start_with_plugin(f->dir, args, name, incoming, FAULT_SO,
                                  &copy, &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(p), &setup, &err);
    g_assert_no_error(err);
    return p;
}

/* After a save that completed: the new image, and the VM running again. */
static void committed_anew(Fixture *f)
{
    GError *err = NULL;

    g_assert_cmpint(stat(f->state, &f->committed), ==, 0);
    /* cpr-reboot leaves it paused, and a paused VM does not save again */
    qmp_run(qemu_proc_qmp(f->src), "cont", NULL, &err);
    g_assert_no_error(err);
}

/* The source and one clean save: how many writes a save makes. */
static void fixture_setup(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    g_autofree char *uri = NULL;
    g_autofree char *line = NULL;
    GError *err = NULL;

    f->dir = test_env_mkdtemp(TEST_BASE_SHM);
    f->state = g_build_filename(f->dir, "vm.img", NULL);
    f->src = start(f, "ram-src", "src", NULL);
    write_pattern(qemu_proc_qtest(f->src));
    uri = uri_with(f, NULL);
    qmp_migrate(qemu_proc_qmp(f->src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(f->src), TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);
    line = next_log_line(f, 0, qemu_proc_qmp(f->src), "a clean save");
    g_assert_cmpint(log_field(line, "committed"), ==, 1);
    f->writes = log_field(line, "writes");
    f->thread_writes = log_field(line, "thread-writes");
    g_test_message("a clean save: %s", line);
    committed_anew(f);
}

static void fixture_teardown(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    g_clear_pointer(&f->src, qemu_proc_free);
    test_env_rmtree(f->dir);
    g_free(f->dir);
    g_free(f->state);
}

/*
 * A save with @opt, which injects a fault at write @k (of the save, or of
 * each thread if @per_thread).  The number of writes varies a little from
 * save to save: one that ends before write @k completes.  Any other must
 * fail (QEMU does not always pass the transport's message on: "ram_save_setup
 * failed: Input/output error"), QEMU runs on, the transport committed
 * nothing and aborted, and the image is the old one.
 *
 * Returns: whether the fault was injected.
 */
static gboolean save_with_fault(Fixture *f, const char *opt, long long k,
                                gboolean per_thread)
{
    g_autofree char *uri = uri_with(f, opt);
    g_autofree char *line = NULL;
    Qmp *qmp = qemu_proc_qmp(f->src);
    guint before = log_count(f);
    gboolean completed;
    GError *err = NULL;
    struct stat st;

    qmp_migrate(qmp, uri, &err);
    g_assert_no_error(err);
    completed = qmp_wait_migration(qmp, TIMEOUT_MS, NULL, &err);
    assert_alive(f, opt);
    line = next_log_line(f, before, qmp, opt);
    if (completed) {
        if (log_field(line, per_thread ? "thread-writes" : "writes") >= k ||
            !log_field(line, "committed")) {
            g_error("%s: the save completed: %s", opt, line);
        }
        committed_anew(f);
        return FALSE;
    }
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_clear_error(&err);
    if (log_field(line, "committed") || !log_field(line, "aborted")) {
        g_error("%s: the transport says %s", opt, line);
    }
    g_assert_cmpint(stat(f->state, &st), ==, 0);
    g_assert_cmpint(st.st_ino, ==, f->committed.st_ino);
    g_assert_cmpint(st.st_mtim.tv_nsec, ==, f->committed.st_mtim.tv_nsec);
    return TRUE;
}

/* Restore the committed image through @opt: every page must be there. */
static void restore_whole(Fixture *f, const char *opt)
{
    g_autofree char *uri = uri_with(f, opt);
    g_autoptr(QemuProc) dst = start(f, "ram-dst", "dst", "defer");
    GError *err = NULL;

    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qemu_proc_qmp(dst), "running", TIMEOUT_MS, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
        g_error("restore %s: %s", opt ? opt : "", err->message);
    }
    g_assert_cmpuint(lost_pages(qemu_proc_qtest(dst)), ==, 0);
}

/* Restore through @opt must fail with a message, the process must exit. */
static void restore_fails(Fixture *f, const char *opt)
{
    g_autofree char *uri = uri_with(f, opt);
    g_autoptr(QemuProc) dst = start(f, "ram-dst", "dst", "defer");
    g_autofree char *log = NULL;
    GError *err = NULL;
    int status;

    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    if (!qemu_proc_wait(dst, TIMEOUT_MS, &status, &err)) {
        g_autoptr(JsonNode) info = qmp_execute(qemu_proc_qmp(dst),
                                               "query-migrate", NULL, NULL);
        g_autofree char *run = qmp_query_status(qemu_proc_qmp(dst), NULL);

        g_error("restore %s: QEMU did not exit: %s; %s, %s", opt,
                err->message, run, info ? json_to_string(info, FALSE) : "");
    }
    log = qemu_proc_log(dst);
    /* an exit code, 128 + the signal if one killed it */
    if (status == 0 || status >= 128) {
        g_error("restore %s: QEMU ended with status 0x%x:\n%s", opt, status,
                log);
    }
    if (!strstr(log, "the stream ends at offset")) {
        g_error("restore %s: no message names the transport:\n%s", opt, log);
    }
}

/*
 * Every write of a save fails once, twice over: at once, then after
 * 20 ms, while the other threads run on (the migration thread reaches
 * the sync that waits for the failing channel, or finishes the stream).
 */
static void test_every_write(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    guint failed = 0;

    for (int round = 0; round < 2; round++) {
        /* a save or two may make a write more than the clean one */
        for (long long k = 1; k <= f->writes + 2; k++) {
            g_autofree char *opt = g_strdup_printf("fail-write=%lld%s", k,
                                                   round ? ",fail-delay=20"
                                                         : "");

            failed += save_with_fault(f, opt, k, FALSE);
        }
    }
    g_test_message("%u saves failed at their k-th write, k = 1 to %lld, "
                   "at once and slowly", failed, f->writes + 2);
    g_assert_cmpuint(failed, >=, 2 * f->writes - 4);
    restore_whole(f, NULL);
}

/* The k-th write of every thread (the multifd channels' own) fails. */
static void test_every_thread_write(Fixture *f,
                                    gconstpointer data G_GNUC_UNUSED)
{
    guint failed = 0;

    for (long long k = 1; k <= f->thread_writes + 2; k++) {
        g_autofree char *opt = g_strdup_printf("fail-thread-write=%lld,"
                                               "fail-delay=5", k);

        failed += save_with_fault(f, opt, k, TRUE);
    }
    g_test_message("%u saves failed at each thread's k-th write, k = 1 to "
                   "%lld", failed, f->thread_writes + 2);
    /* how the pages spread over the channels varies from save to save */
    g_assert_cmpuint(failed, >=, f->thread_writes / 2);
    restore_whole(f, NULL);
}

/*
 * Counts the header forbids, at the first, middle, three-quarter and
 * last writes.  A save's write count varies by a few from save to save
 * (the clean ones logged 127 and 130), so the last position may not be
 * reached: such a save must complete without the fault having fired
 * (save_with_fault() checks that); the first three always are.
 */
static void test_bad_write_counts(Fixture *f,
                                  gconstpointer data G_GNUC_UNUSED)
{
    static const char *const kinds[] = {
        "short-write", "zero-write", "long-write",
    };
    const long long at[] = {
        1, f->writes / 2, f->writes * 3 / 4, f->writes - 1,
    };
    guint failed = 0;

    for (guint i = 0; i < G_N_ELEMENTS(kinds); i++) {
        for (guint j = 0; j < G_N_ELEMENTS(at); j++) {
            g_autofree char *opt = g_strdup_printf("%s=%lld", kinds[i],
                                                   at[j]);

            failed += save_with_fault(f, opt, at[j], FALSE);
        }
    }
    g_test_message("%u of %zu saves with a bad count failed",
                   failed, G_N_ELEMENTS(kinds) * G_N_ELEMENTS(at));
    g_assert_cmpuint(failed, >=,
                     G_N_ELEMENTS(kinds) * (G_N_ELEMENTS(at) - 1));
    restore_whole(f, NULL);
}

static void test_short_reads(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    restore_whole(f, "short-read=4097");
    restore_whole(f, "short-read=1000");
}

/*
 * The stream ends in its header, in the pages and in the last pages.  (Its
 * very end is the vmdesc, which the destination does not read.)
 */
static void test_stream_ends_early(Fixture *f,
                                   gconstpointer data G_GNUC_UNUSED)
{
    restore_fails(f, "end-at=4096");
    restore_fails(f, "end-at=16777216");
    restore_fails(f, "end-at=67108864");
    restore_whole(f, NULL);
}

/* cpr-exec publishes nothing it could not take back: refused. */
static void test_cpr_exec(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    Qmp *qmp = qemu_proc_qmp(f->src);
    g_autofree char *uri = uri_with(f, NULL);
    GError *err = NULL;

    if (!qmp_set_parameter(qmp, "mode", "cpr-exec", &err)) {
        g_test_skip("this QEMU has no cpr-exec");
        g_clear_error(&err);
        return;
    }
    g_assert_false(qmp_migrate(qmp, uri, &err));
    g_assert_nonnull(err);
    g_test_message("cpr-exec: %s", err->message);
    g_assert_nonnull(strstr(err->message, "mode cpr-exec is not supported"));
    g_clear_error(&err);
    g_assert_true(qemu_proc_running(f->src));
    g_assert_true(qmp_set_parameter(qmp, "mode", "cpr-reboot", &err));
    g_assert_true(save_with_fault(f, "fail-write=1", 1, FALSE));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add("/fault/" path, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("every-write-twice", test_every_write);
    ADD("every-thread-write", test_every_thread_write);
    ADD("bad-write-counts", test_bad_write_counts);
    ADD("short-reads", test_short_reads);
    ADD("stream-ends-early", test_stream_ends_early);
    ADD("cpr-exec-refused", test_cpr_exec);
    return g_test_run();
}
