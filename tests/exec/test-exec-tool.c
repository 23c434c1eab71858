/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem save / load / wait as QEMU runs them, without QEMU: the test
 * is QEMU's side of the pipes.  Streams are synthetic but framed as
 * QEMU's (exec-stream.h).  Every way a save can end is checked against
 * what `wait` says and what the image then loads.
 */
#include "exec-stream.h"
#include "helper-status.h"
#include "reader.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

typedef struct Run {
    int status;         /* exit code, or 128 + signal */
    char *out, *err;
    gsize out_len;
} Run;

static void run_free(Run *r)
{
    g_free(r->out);
    g_free(r->err);
}

static GSubprocess *spawn(GSubprocessFlags flags, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    GError *err = NULL;
    GSubprocess *p;

    g_ptr_array_add(argv, (gpointer)CPR_PMEM);
    for (guint i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_newv((const char *const *)argv->pdata, flags, &err);
    g_assert_no_error(err);
    return p;
}

/*
 * Now: signal_now() sends it later, from GLib's worker
 * thread, after we may have closed the helper's stdin.
 */
static void signal_now(GSubprocess *p, int sig)
{
    g_assert_cmpint(kill(atoi(g_subprocess_get_identifier(p)), sig), ==, 0);
}

static int exit_code(GSubprocess *p)
{
    return g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p)
                                         : 128 + g_subprocess_get_term_sig(p);
}

/*
 * Run with @in (may be NULL: empty) as stdin, from a file so that a
 * helper that refuses before it reads does not break our pipe; the tests
 * that need QEMU's pipe use start_save().  stdout and stderr are kept.
 */
static Run run_in(const guint8 *in, gsize in_len, const char *const *args)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autofree char *input = g_build_filename(dir, "stdin", NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GBytes) out = NULL, errb = NULL;
    GSubprocess *p;
    GError *err = NULL;
    Run r = { 0 };

    g_assert_true(g_file_set_contents(input, in ? (const char *)in : "",
                                      in_len, NULL));
    g_subprocess_launcher_set_stdin_file_path(l, input);
    g_ptr_array_add(argv, (gpointer)CPR_PMEM);
    for (guint i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata,
                                     &err);
    g_assert_no_error(err);
    g_subprocess_communicate(p, NULL, NULL, &out, &errb, &err);
    g_assert_no_error(err);
    r.status = exit_code(p);
    r.out_len = g_bytes_get_size(out);
    r.out = g_malloc(r.out_len + 1);
    if (r.out_len) {
        memcpy(r.out, g_bytes_get_data(out, NULL), r.out_len);
    }
    r.out[r.out_len] = 0;
    r.err = g_strndup(g_bytes_get_data(errb, NULL), g_bytes_get_size(errb));
    g_test_message("cpr-pmem %s -> %d\n%s%s", args[0], r.status,
                   memchr(r.out, 0, r.out_len) ? "(binary stdout)\n" : r.out,
                   r.err);
    g_object_unref(p);
    return r;
}

static Run run(const char *const *args)
{
    return run_in(NULL, 0, args);
}

static void expect(Run r, int status, const char *out, const char *err)
{
    g_assert_cmpint(r.status, ==, status);
    if (out && !strstr(r.out, out)) {
        g_error("stdout lacks \"%s\":\n%s", out, r.out);
    }
    if (err && !strstr(r.err, err)) {
        g_error("stderr lacks \"%s\":\n%s", err, r.err);
    }
    run_free(&r);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static char *image(const char *name)
{
    return g_build_filename(dir, name, NULL);
}

/* The stream the image loads, or NULL (and the reason) if it does not. */
static GByteArray *loaded(const char *path, char **why)
{
    CprReader *r = cpr_reader_open(path, why);
    GByteArray *s;
    guint8 buf[65536];
    ssize_t n;

    if (!r) {
        return NULL;
    }
    s = g_byte_array_new();
    while ((n = cpr_reader_read(r, buf, sizeof(buf), why)) > 0) {
        g_byte_array_append(s, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    cpr_reader_close(r);
    return s;
}

static void assert_loads(const char *path, const GByteArray *want)
{
    char *why = NULL;
    g_autoptr(GByteArray) got = loaded(path, &why);

    if (!got) {
        g_error("%s does not load: %s", path, why);
    }
    g_assert_cmpmem(got->data, got->len, want->data, want->len);
}

static CprHelperStatus status_of(const char *path, CprDecode *dec)
{
    CprHelperStatus st;
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(cpr_hs_read(fd, &st, dec), ==, 0);
    close(fd);
    return st;
}

static void save_ok(const char *path, const GByteArray *s, const char *id)
{
    char *want = g_strdup_printf("%s: committed generation", path);

    expect(run_in(s->data, s->len, id ? ARGS("save", id, path)
                                      : ARGS("save", path)),
           0, NULL, want);
    g_free(want);
}

static void test_usage(void)
{
    g_autofree char *img = image("usage.cpr");

    expect(run(ARGS("--help")), 0, "wait [--id=ID] [--timeout=SECONDS]",
           NULL);
    expect(run(ARGS("save", "--id=a b", img)), 2, NULL, "--id must be");
    expect(run(ARGS("save", "--id=", img)), 2, NULL, "--id must be");
    expect(run(ARGS("info", "--id=x", img)), 2, NULL, "only for save and");
    expect(run(ARGS("save", "--timeout=3", img)), 2, NULL, "only for wait");
    expect(run(ARGS("wait", "--timeout=soon", img)), 2, NULL,
           "number of seconds");
    expect(run(ARGS("load", img, img)), 2, NULL, "exactly one IMAGE");
    /* a missing image: nothing created, nothing to wait for */
    expect(run(ARGS("wait", img)), 2, NULL, "cannot open");
    expect(run(ARGS("load", img)), 2, NULL, "cannot open");
    g_assert_false(g_file_test(img, G_FILE_TEST_EXISTS));
}

static void test_save_load_wait(void)
{
    g_autofree char *img = image("cycle.cpr");
    g_autoptr(GByteArray) s1 = exec_stream_new(11, 200000, 20000);
    g_autoptr(GByteArray) s2 = exec_stream_new(12, 3000000, 50000);
    CprHelperStatus st;
    CprDecode dec;
    Run r;

    g_autofree char *want1 = g_strdup_printf("committed generation 1 (%u "
                                             "bytes", s1->len);

    save_ok(img, s1, "--id=first");
    expect(run(ARGS("wait", img)), 0, want1, NULL);
    expect(run(ARGS("wait", "--id=first", img)), 0, "id first", NULL);
    save_ok(img, s2, NULL);
    expect(run(ARGS("wait", "--timeout=5", img)), 0,
           "committed generation 2", NULL);
    assert_loads(img, s2);
    st = status_of(img, &dec);
    g_assert_cmpint(dec, ==, CPR_DECODE_OK);
    g_assert_cmpuint(st.attempt, ==, 2);
    g_assert_cmpuint(st.generation, ==, 2);
    g_assert_cmpuint(st.stream_len, ==, s2->len);
    g_assert_cmpuint(st.state, ==, CPR_HS_COMMITTED);
    g_assert_cmpstr(st.id, ==, "");

    /* load: the stream, exactly, through a pipe */
    r = run(ARGS("load", img));
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpmem(r.out, r.out_len, s2->data, s2->len);
    g_assert_nonnull(strstr(r.err, "generation 2 verified"));
    run_free(&r);

    /* the record says what saved it; no RAM is bound */
    r = run(ARGS("info", "--output=json", img));
    g_assert_cmpint(r.status, ==, 0);
    {
        g_autoptr(JsonParser) p = json_parser_new();
        JsonObject *o, *vm, *ex;

        g_assert_true(json_parser_load_from_data(p, r.out, -1, NULL));
        o = json_node_get_object(json_parser_get_root(p));
        vm = json_object_get_object_member(o, "vm");
        ex = json_object_get_object_member(o, "exec-save");
        g_assert_cmpstr(json_object_get_string_member(vm, "qemu-version"),
                        ==, "cpr-pmem save (exec:)");
        g_assert_cmpuint(json_array_get_length(
            json_object_get_array_member(vm, "ram-blocks")), ==, 0);
        g_assert_cmpstr(json_object_get_string_member(ex, "state"), ==,
                        "committed");
        g_assert_cmpint(json_object_get_int_member(ex, "attempt"), ==, 2);
        g_assert_cmpint(json_object_get_int_member(ex, "generation"), ==, 2);
        g_assert_cmpint(json_object_get_int_member(ex, "stream-bytes"), ==,
                        s2->len);
    }
    run_free(&r);
    expect(run(ARGS("info", img)), 0,
           "last exec: save (cpr-pmem save): attempt 2, committed", NULL);
    expect(run(ARGS("check", img)), 0, "OK, generation 2", NULL);
}

/* Whatever QEMU leaves of a failed or cancelled migration: a prefix. */
static void test_incomplete_not_committed(void)
{
    g_autofree char *img = image("prefix.cpr");
    g_autoptr(GByteArray) good = exec_stream_new(21, 100000, 3000);
    g_autoptr(GByteArray) next = exec_stream_new(22, 100000, 3000);
    gsize cuts[] = { 0, 1, 7, 8, 50000, next->len - 3000 - 6,
                     next->len - 3000 - 1, next->len - 100, next->len - 1 };

    save_ok(img, good, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(cuts); i++) {
        g_autofree char *id = g_strdup_printf("--id=cut%u", i);
        g_autofree char *wid = g_strdup_printf("--id=cut%u", i);

        expect(run_in(next->data, cuts[i], ARGS("save", id, img)), 1, NULL,
               "the previous image stays the loadable one");
        expect(run(ARGS("wait", wid, img)), 1, NULL,
               cuts[i] ? "generation 2 not committed" : "QEMU sent nothing");
        assert_loads(img, good);
    }
    /* bytes after QEMU's end: not what QEMU sends */
    {
        g_autoptr(GByteArray) more = g_byte_array_new();

        g_byte_array_append(more, next->data, next->len);
        g_byte_array_append(more, (const guint8 *)"\n", 1);
        expect(run_in(more->data, more->len, ARGS("save", img)), 1, NULL,
               "incomplete");
    }
    /* and a generation is never skipped */
    save_ok(img, next, NULL);
    expect(run(ARGS("check", img)), 0, "OK, generation 2", NULL);
}

/*
 * A stream whose VM description nests 100,000 arrays: the save ends with
 * a reason (exit 1), not a crash, and the previous image stays.
 */
static void test_deep_vmdesc(void)
{
    g_autofree char *img = image("deep.cpr");
    g_autoptr(GByteArray) good = exec_stream_new(31, 10000, 300);
    g_autoptr(GByteArray) deep = exec_stream_new(32, 10000, 0);
    g_autoptr(GString) j0 = exec_stream_vmdesc(0);
    g_autoptr(GString) j = g_string_new("{\"page_size\": 4096, \"devices\": ");

    for (int i = 0; i < 100000; i++) {
        g_string_append_c(j, '[');
    }
    for (int i = 0; i < 100000; i++) {
        g_string_append_c(j, ']');
    }
    g_string_append_c(j, '}');
    g_byte_array_set_size(deep, deep->len - j0->len - 6);
    exec_stream_trailer(deep, j->str, j->len);
    save_ok(img, good, NULL);
    expect(run_in(deep->data, deep->len, ARGS("save", img)), 1, NULL,
           "nest deeper than 1000 levels");
    assert_loads(img, good);
}

/* Start a save; QEMU's end of the pipe stays with the test. */
static GSubprocess *start_save(const char *img, const char *id)
{
    return spawn(G_SUBPROCESS_FLAGS_STDIN_PIPE |
                 G_SUBPROCESS_FLAGS_STDERR_PIPE,
                 id ? ARGS("save", id, img) : ARGS("save", img));
}

static void feed(GSubprocess *p, const guint8 *buf, gsize len)
{
    GOutputStream *in = g_subprocess_get_stdin_pipe(p);
    GError *err = NULL;

    g_output_stream_write_all(in, buf, len, NULL, NULL, &err);
    g_assert_no_error(err);
}

/* Until the status block shows this save running (by its pid). */
static void wait_running(const char *img, GSubprocess *p)
{
    guint32 pid = (guint32)atoi(g_subprocess_get_identifier(p));

    for (int i = 0; i < 1000; i++) {
        CprDecode dec = CPR_DECODE_EMPTY;
        CprHelperStatus st = { 0 };

        /* the helper may not even have created the image yet */
        if (g_file_test(img, G_FILE_TEST_EXISTS)) {
            st = status_of(img, &dec);
        }
        if (dec == CPR_DECODE_OK && st.pid == pid &&
            st.state == CPR_HS_RUNNING) {
            return;
        }
        g_usleep(10000);
    }
    g_error("the save never recorded itself as running");
}

/* Close QEMU's end of the pipe (if still open), collect stderr, reap. */
static int finish(GSubprocess *p, char **err_text)
{
    GOutputStream *in = g_subprocess_get_stdin_pipe(p);
    GInputStream *e = g_subprocess_get_stderr_pipe(p);
    GString *text = g_string_new(NULL);
    GError *err = NULL;
    char buf[4096];
    gsize n;
    int code;

    if (in && !g_output_stream_is_closed(in)) {
        g_output_stream_close(in, NULL, NULL);
    }
    while (e && g_input_stream_read_all(e, buf, sizeof(buf), &n, NULL,
                                        &err) && n) {
        g_string_append_len(text, buf, n);
    }
    g_assert_no_error(err);
    g_subprocess_wait(p, NULL, &err);
    g_assert_no_error(err);
    code = exit_code(p);
    if (err_text) {
        *err_text = g_string_free(text, FALSE);
    } else {
        g_string_free(text, TRUE);
    }
    g_object_unref(p);
    return code;
}

/* `wait` blocks while the save runs and reports its end. */
static void test_wait_blocks(void)
{
    g_autofree char *img = image("block.cpr");
    g_autoptr(GByteArray) s = exec_stream_new(31, 500000, 4000);
    GSubprocess *save = start_save(img, "--id=slow");
    GSubprocess *waiter;
    g_autoptr(GBytes) out = NULL;
    GError *err = NULL;

    feed(save, s->data, s->len / 2);
    wait_running(img, save);
    expect(run(ARGS("wait", "--timeout=0", img)), 3, NULL,
           "still saving after 0 s");
    expect(run(ARGS("info", img)), 1, "attempt 1, running now",
           "a save to this file is in progress");
    waiter = spawn(G_SUBPROCESS_FLAGS_STDOUT_PIPE, ARGS("wait", img));
    g_usleep(300000);
    /* still waiting: it has not written, let alone closed, its stdout */
    g_assert_false(g_pollable_input_stream_is_readable(
        G_POLLABLE_INPUT_STREAM(g_subprocess_get_stdout_pipe(waiter))));
    /* a second save meanwhile is refused, and leaves the status alone */
    expect(run_in(s->data, s->len, ARGS("save", "--id=second", img)), 1,
           NULL, "in use by another save");
    feed(save, s->data + s->len / 2, s->len - s->len / 2);
    g_output_stream_close(g_subprocess_get_stdin_pipe(save), NULL, NULL);
    g_assert_cmpint(finish(save, NULL), ==, 0);
    g_subprocess_communicate(waiter, NULL, NULL, &out, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpint(exit_code(waiter), ==, 0);
    g_assert_nonnull(strstr(g_bytes_get_data(out, NULL),
                            "committed generation 1"));
    g_assert_nonnull(strstr(g_bytes_get_data(out, NULL), "id slow"));
    g_object_unref(waiter);
    assert_loads(img, s);
}

/* A helper killed mid-save: `wait` does not hang, the last image loads. */
static void test_killed(void)
{
    g_autofree char *img = image("killed.cpr");
    g_autoptr(GByteArray) good = exec_stream_new(41, 100000, 3000);
    g_autoptr(GByteArray) s = exec_stream_new(42, 2000000, 3000);
    GSubprocess *save;
    GSubprocess *waiter;
    GError *err = NULL;
    g_autoptr(GBytes) werr = NULL;
    const char *text;

    save_ok(img, good, NULL);
    save = start_save(img, "--id=doomed");
    feed(save, s->data, s->len - 10);
    wait_running(img, save);
    waiter = spawn(G_SUBPROCESS_FLAGS_STDERR_PIPE,
                   ARGS("wait", "--id=doomed", img));
    g_usleep(200000);
    signal_now(save, SIGKILL);
    g_assert_cmpint(finish(save, NULL), ==, 128 + SIGKILL);
    g_subprocess_communicate(waiter, NULL, NULL, NULL, &werr, &err);
    g_assert_no_error(err);
    g_assert_cmpint(exit_code(waiter), ==, 1);
    text = g_bytes_get_data(werr, NULL);
    g_test_message("wait: %s", text);
    g_assert_nonnull(strstr(text, "generation 2 not committed"));
    g_assert_nonnull(strstr(text, "ended without finishing the save"));
    g_object_unref(waiter);
    expect(run(ARGS("info", img)), 0, "attempt 2, failed", NULL);
    assert_loads(img, good);
    /* and the next save takes generation 2 */
    save_ok(img, s, NULL);
    expect(run(ARGS("wait", img)), 0, "committed generation 2", NULL);
}

/* SIGTERM (an operator, a service manager) ends the save as failed. */
static void test_terminated(void)
{
    g_autofree char *img = image("term.cpr");
    g_autoptr(GByteArray) s = exec_stream_new(51, 100000, 3000);
    GSubprocess *save = start_save(img, NULL);
    g_autofree char *err = NULL;

    feed(save, s->data, s->len / 2);
    wait_running(img, save);
    signal_now(save, SIGTERM);
    g_assert_cmpint(finish(save, &err), ==, 1);
    g_test_message("%s", err);
    g_assert_nonnull(strstr(err, "stopped by signal 15"));
    expect(run(ARGS("wait", img)), 1, NULL, "stopped by signal 15");
    expect(run(ARGS("check", img)), 1, NULL, "no committed image");
}

/* Killed after its commit, before it recorded that: the record tells. */
static void test_died_after_commit(void)
{
    g_autofree char *img = image("late.cpr");
    g_autoptr(GByteArray) s = exec_stream_new(61, 10000, 300);
    CprHelperStatus st;
    CprDecode dec;
    int fd;

    save_ok(img, s, NULL);
    st = status_of(img, &dec);
    st.state = CPR_HS_RUNNING;
    st.end_ns = 0;
    st.message[0] = 0;
    fd = open(img, O_RDWR);
    g_assert_cmpint(cpr_hs_write(fd, &st), ==, 0);
    close(fd);
    expect(run(ARGS("wait", img)), 0, "ended after its commit", NULL);
    /* not if the record is not its own (saved before it started) */
    st.start_ns += 10ull * 1000 * 1000 * 1000 * 3600;
    fd = open(img, O_RDWR);
    g_assert_cmpint(cpr_hs_write(fd, &st), ==, 0);
    close(fd);
    expect(run(ARGS("wait", img)), 1, NULL, "ended without finishing");
}

/*
 * The newest save fails before it could record itself as running (the
 * image is being read by a restore): `wait` without --id reports that
 * failure, not the older save's commit; a file that is no image gets no
 * status block.
 */
static void test_wait_newest_failed_early(void)
{
    g_autofree char *img = image("early.cpr");
    g_autofree char *junk = image("early-junk");
    g_autoptr(GByteArray) s = exec_stream_new(66, 10000, 300);
    g_autofree char *junk_after = NULL;
    char *why = NULL;
    CprReader *r;

    save_ok(img, s, NULL);
    r = cpr_reader_open(img, &why);
    g_assert_nonnull(r);
    expect(run_in(s->data, s->len, ARGS("save", img)), 1, NULL,
           "in use by another save or a restore");
    cpr_reader_close(r);
    expect(run(ARGS("wait", img)), 1, NULL,
           "save failed, generation 2 not committed (save attempt 2");
    assert_loads(img, s);
    save_ok(img, s, NULL);
    expect(run(ARGS("wait", img)), 0, "committed generation 2", NULL);

    g_assert_true(g_file_set_contents(junk, "not an image\n", -1, NULL));
    expect(run_in(s->data, s->len, ARGS("save", junk)), 1, NULL,
           "not a pmem CPR image");
    g_assert_true(g_file_get_contents(junk, &junk_after, NULL, NULL));
    g_assert_cmpstr(junk_after, ==, "not an image\n");
}

static void test_wait_nothing(void)
{
    g_autofree char *img = image("never.cpr");
    g_autofree char *junk = image("junk");
    g_autoptr(GByteArray) s = exec_stream_new(71, 1000, 100);

    expect(run(ARGS("create", "--size=8M", img)), 0, NULL, NULL);
    expect(run(ARGS("wait", img)), 3, NULL, "cpr-pmem save never ran");
    expect(run(ARGS("wait", "--id=x", "--timeout=1", img)), 3, NULL,
           "no save with id x started");
    save_ok(img, s, "--id=y");
    expect(run(ARGS("wait", "--id=x", "--timeout=1", img)), 3, NULL,
           "the last recorded: y");
    g_assert_true(g_file_set_contents(junk, "not an image", -1, NULL));
    expect(run(ARGS("wait", junk)), 2, NULL, "not a pmem CPR image");
    /* a save never writes into a file that is not an image */
    expect(run_in(s->data, s->len, ARGS("save", junk)), 1, NULL,
           "not a pmem CPR image");
    {
        g_autofree char *text = NULL;

        g_assert_true(g_file_get_contents(junk, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "not an image");
    }
}

/* A refused image: QEMU gets no byte of it, and a non-stream to fail on. */
static void test_load_refused(void)
{
    g_autofree char *img = image("bad.cpr");
    g_autofree char *out = image("bad.out");
    g_autoptr(GByteArray) s = exec_stream_new(81, 100000, 3000);
    char *stdout_arg;
    Run r;

    save_ok(img, s, NULL);
    /* flip a payload byte */
    {
        int fd = open(img, O_RDWR);
        guint8 b;

        g_assert_cmpint(pread(fd, &b, 1, (2 << 20) + 5000), ==, 1);
        b ^= 0xff;
        g_assert_cmpint(pwrite(fd, &b, 1, (2 << 20) + 5000), ==, 1);
        close(fd);
    }
    r = run(ARGS("load", img));
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpuint(r.out_len, ==, 4);
    g_assert_cmpmem(r.out, 4, "\0\0\0\0", 4);
    g_assert_nonnull(strstr(r.err, "payload checksum mismatch"));
    g_assert_nonnull(strstr(r.err, "nothing of it was sent to QEMU"));
    run_free(&r);
    /* into a file (not QEMU): nothing at all */
    stdout_arg = g_strdup_printf("%s load %s > %s", CPR_PMEM, img, out);
    {
        const char *sh[] = { "/bin/sh", "-c", stdout_arg, NULL };
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **)sh, NULL,
                                   G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                   NULL, NULL, &status, NULL));
        g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    }
    g_free(stdout_arg);
    {
        g_autofree char *text = NULL;
        gsize len;

        g_assert_true(g_file_get_contents(out, &text, &len, NULL));
        g_assert_cmpuint(len, ==, 0);
    }
    /* a save in progress is not loaded either */
    {
        g_autofree char *img2 = image("busy.cpr");
        GSubprocess *save = start_save(img2, NULL);

        feed(save, s->data, 100);
        wait_running(img2, save);
        expect(run(ARGS("load", img2)), 1, NULL, "in progress");
        signal_now(save, SIGKILL);
        finish(save, NULL);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    /* a helper that refuses may leave before it read its stdin */
    signal(SIGPIPE, SIG_IGN);
    dir = g_dir_make_tmp("exec-tool-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_test_add_func("/exec-tool/usage", test_usage);
    g_test_add_func("/exec-tool/save-load-wait", test_save_load_wait);
    g_test_add_func("/exec-tool/incomplete-not-committed",
                    test_incomplete_not_committed);
    g_test_add_func("/exec-tool/wait-blocks", test_wait_blocks);
    g_test_add_func("/exec-tool/killed", test_killed);
    g_test_add_func("/exec-tool/terminated", test_terminated);
    g_test_add_func("/exec-tool/died-after-commit", test_died_after_commit);
    g_test_add_func("/exec-tool/wait-nothing", test_wait_nothing);
    g_test_add_func("/exec-tool/wait-newest-failed-early",
                    test_wait_newest_failed_early);
    g_test_add_func("/exec-tool/deep-vmdesc", test_deep_vmdesc);
    g_test_add_func("/exec-tool/load-refused", test_load_refused);
    ret = g_test_run();
    if (ret == 0) {
        g_autofree char *cmd = g_strdup_printf("rm -rf %s", dir);

        g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
    }
    return ret;
}
