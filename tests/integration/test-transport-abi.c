/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's side of the transport ABI, with transport-test-io1.so (a plain
 * file transport, see transport-testio.c) where the pmem backend cannot
 * provoke the case:
 *
 * - a read error's message reaches query-migrate's error-desc, and the
 *   log when QEMU exits on the error;
 * - "-incoming test-io1:PATH": a scheme with a digit and '-' is a URI;
 * - a transport is initialised at start-up only if
 *   -global migration.x-preload-transports names it, in a source as in a
 *   destination; a name that does not load is a warning;
 * - the VM QEMU describes to out_open, out_commit and in_open: with
 *   x-ignore-shared, the RAM block of the memory-backend-file (its name,
 *   size, the backing file through the fd, the fd offset, the flags and,
 *   through the host pointer, guest RAM itself, with offset=, prealloc=on
 *   and pmem=on too), the machine type as resolved and the CPU model;
 *   without it, no RAM block;
 * - the transport's warnings reach QEMU's log as warnings;
 * - the trace events: listed by -trace help, and firing for a save, a
 *   restore and a failed commit.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define RAM_SIZE   "64M"
#define CMOS_BYTE  0x43
#define FAIL_AT    65536
#define PRELOAD    "migration.x-preload-transports="
#define PROBE_ADDR 0x200000     /* transport-testio.c's PROBE_OFFSET */
#define PROBE_WORD 0xfeedf00d

typedef struct {
    char *dir;
    char *image;        /* PATH of test-io1:PATH */
    char *mark;         /* created by the transport's init */
    char *copy;         /* the transport in this test's plugin directory */
    GStrv args;
} Fixture;

static void fixture_init(Fixture *f)
{
    f->dir = test_env_mkdtemp(TEST_BASE_SHM);
    f->image = g_build_filename(f->dir, "vm.img", NULL);
    f->mark = g_build_filename(f->dir, "init-ran", NULL);
    f->args = halt_vm_args(f->dir, "ram", RAM_SIZE);
}

static void fixture_free(Fixture *f)
{
    test_env_rmtree(f->dir);
    g_strfreev(f->args);
    g_free(f->copy);
    g_free(f->mark);
    g_free(f->image);
    g_free(f->dir);
}

/* @args + @extra (NULL-terminated). */
static GStrv args_plus(GStrv args, const char *const *extra)
{
    GPtrArray *a = g_ptr_array_new();

    for (guint i = 0; args[i]; i++) {
        g_ptr_array_add(a, g_strdup(args[i]));
    }
    for (guint i = 0; extra && extra[i]; i++) {
        g_ptr_array_add(a, g_strdup(extra[i]));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* A QEMU whose plugin directory holds only transport-test-io1.so. */
static QemuProc *start(Fixture *f, GStrv args, const char *name,
                       const char *incoming)
{
    GError *err = NULL;
    QemuProc *p;

    g_setenv("TEST_IO1_INIT_MARK", f->mark, TRUE);
    g_clear_pointer(&f->copy, g_free);
    p = halt_vm_start_with_plugin(f->dir, args, name, incoming, TESTIO_SO,
                                  &f->copy, &err);
    g_unsetenv("TEST_IO1_INIT_MARK");
    g_assert_no_error(err);
    return p;
}

static void run_ok(Qmp *qmp, const char *cmd, JsonObject *args)
{
    GError *err = NULL;

    qmp_run(qmp, cmd, args, &err);
    g_assert_no_error(err);
}

/* Save to test-io1:@f->image@opts, the CMOS byte set to @cmos. */
static QemuProc *save_opts(Fixture *f, GStrv args, const CprSetup *setup,
                           guint8 cmos, const char *opts)
{
    g_autofree char *uri = g_strconcat("test-io1:", f->image, opts, NULL);
    QemuProc *src = start(f, args, "src", NULL);
    Qmp *qmp = qemu_proc_qmp(src);
    GError *err = NULL;

    if (setup) {
        cpr_setup(qmp, setup, &err);
        g_assert_no_error(err);
    }
    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, cmos);
    qtest_writel(qemu_proc_qtest(src), PROBE_ADDR, PROBE_WORD, &err);
    g_assert_no_error(err);
    qmp_migrate(qmp, uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qmp, 60000, NULL, &err);
    g_assert_no_error(err);
    return src;
}

/* Save to test-io1:@f->image, the CMOS byte set to @cmos. */
static void save(Fixture *f, const CprSetup *setup, guint8 cmos)
{
    g_autofree char *uri = g_strconcat("test-io1:", f->image, NULL);
    g_autoptr(QemuProc) src = start(f, f->args, "src", NULL);
    Qmp *qmp = qemu_proc_qmp(src);
    GError *err = NULL;

    if (setup) {
        cpr_setup(qmp, setup, &err);
        g_assert_no_error(err);
    }
    halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, cmos);
    qtest_writel(qemu_proc_qtest(src), 0x200000, 0xfeedf00d, &err);
    g_assert_no_error(err);
    qmp_migrate(qmp, uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qmp, 60000, NULL, &err);
    g_assert_no_error(err);
}

static char *expected_read_error(Fixture *f)
{
    return g_strdup_printf("test-io1: %s: injected read failure at byte %d",
                           f->image, FAIL_AT);
}

/*
 * in_readv fails after FAIL_AT bytes: the destination reports the
 * transport's message, not the errno a vmstate loader made of it.
 */
static void test_read_error(void)
{
    g_autofree char *uri = NULL, *want = NULL, *log = NULL;
    g_autoptr(JsonObject) args = json_object_new();
    g_autoptr(JsonNode) info = NULL;
    g_autoptr(QemuProc) dst = NULL;
    Fixture f = { 0 };
    GError *err = NULL;
    const char *desc;
    JsonObject *obj;
    int status;

    fixture_init(&f);
    save(&f, NULL, 0x31);
    uri = g_strdup_printf("test-io1:%s,fail-read-at=%d", f.image, FAIL_AT);
    want = expected_read_error(&f);

    /* exit-on-error off: the error stays in query-migrate */
    dst = start(&f, f.args, "dst", "defer");
    json_object_set_string_member(args, "uri", uri);
    json_object_set_boolean_member(args, "exit-on-error", FALSE);
    run_ok(qemu_proc_qmp(dst), "migrate-incoming", args);
    qmp_wait_migration(qemu_proc_qmp(dst), 30000, NULL, &err);
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_clear_error(&err);
    info = qmp_execute(qemu_proc_qmp(dst), "query-migrate", NULL, &err);
    g_assert_no_error(err);
    obj = json_node_get_object(info);
    g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==,
                    "failed");
    desc = json_object_get_string_member_with_default(obj, "error-desc", "");
    g_test_message("error-desc: %s", desc);
    g_assert_nonnull(strstr(desc, want));
    g_clear_pointer(&dst, qemu_proc_free);

    /* the default, exit-on-error: QEMU prints it and exits */
    dst = start(&f, f.args, "dst-exit", "defer");
    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    g_assert_true(qemu_proc_wait(dst, 30000, &status, &err));
    g_assert_no_error(err);
    g_assert_cmpint(status, ==, 1);
    log = qemu_proc_log(dst);
    g_assert_nonnull(strstr(log, want));
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/* -incoming test-io1:PATH on the command line loads a full save. */
static void test_incoming_uri_scheme(void)
{
    g_autofree char *uri = NULL;
    g_auto(GStrv) fresh = NULL;
    g_autoptr(QemuProc) dst = NULL;
    Fixture f = { 0 };
    GError *err = NULL;
    guint32 word = 0;

    fixture_init(&f);
    save(&f, NULL, 0x32);
    uri = g_strconcat("test-io1:", f.image, NULL);
    fresh = halt_vm_args(f.dir, "ram-fresh", RAM_SIZE);
    dst = start(&f, fresh, "dst", uri);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 30000, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    qtest_readl(qemu_proc_qtest(dst), 0x200000, &word, &err);
    g_assert_no_error(err);
    g_assert_cmphex(word, ==, 0xfeedf00d);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==,
                     0x32);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/* -incoming defer alone, libvirt's usual start: no transport runs. */
static void test_defer_loads_nothing(void)
{
    g_autoptr(QemuProc) dst = NULL;
    Fixture f = { 0 };

    fixture_init(&f);
    dst = start(&f, f.args, "dst", "defer");
    /* QMP answers only after start-up, preloading included */
    g_assert_false(g_file_test(f.mark, G_FILE_TEST_EXISTS));
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/*
 * Named in x-preload-transports: initialised at start-up, by a source as
 * by a destination, and still there when its file is gone.
 */
static void check_preloaded(const char *incoming)
{
    static const char *const extra[] = {
        "-global", PRELOAD "test-io1", NULL,
    };
    g_autofree char *uri = NULL;
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) p = NULL;
    Fixture f = { 0 };
    GError *err = NULL;

    fixture_init(&f);
    uri = g_strconcat("test-io1:", f.image, NULL);
    args = args_plus(f.args, extra);
    if (incoming) {
        save(&f, NULL, 0x33);
        g_assert_cmpint(g_unlink(f.mark), ==, 0);   /* the save's QEMU */
    }
    p = start(&f, args, incoming ? "dst" : "src", incoming);
    g_assert_true(g_file_test(f.mark, G_FILE_TEST_EXISTS));
    g_assert_cmpint(g_unlink(f.copy), ==, 0);
    if (incoming) {
        qmp_migrate_incoming(qemu_proc_qmp(p), uri, &err);
        g_assert_no_error(err);
        qmp_wait_status(qemu_proc_qmp(p), "running", 30000, &err);
    } else {
        qmp_migrate(qemu_proc_qmp(p), uri, &err);
        g_assert_no_error(err);
        qmp_wait_migration(qemu_proc_qmp(p), 60000, NULL, &err);
    }
    g_assert_no_error(err);
    g_clear_pointer(&p, qemu_proc_free);
    fixture_free(&f);
}

static void test_preload_source(void)
{
    check_preloaded(NULL);
}

static void test_preload_destination(void)
{
    check_preloaded("defer");
}

/* A scheme that does not load: a warning, QEMU starts, the rest loads. */
static void test_preload_warns(void)
{
    static const char *const extra[] = {
        "-global", PRELOAD "nosuch,,test-io1", NULL,
    };
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) p = NULL;
    g_autofree char *log = NULL;
    Fixture f = { 0 };

    fixture_init(&f);
    args = args_plus(f.args, extra);
    p = start(&f, args, "dst", "defer");
    g_assert_true(g_file_test(f.mark, G_FILE_TEST_EXISTS));
    log = qemu_proc_log(p);
    g_test_message("log: %s", log);
    g_assert_nonnull(strstr(log, "warning: x-preload-transports: "));
    g_assert_nonnull(strstr(log, "'nosuch'"));
    g_clear_pointer(&p, qemu_proc_free);
    fixture_free(&f);
}

/* "pc-q35-MAJOR.MINOR" of the QEMU behind @qmp: what "q35" resolves to. */
static char *q35_machine(Qmp *qmp)
{
    g_autoptr(JsonNode) v = NULL;
    GError *err = NULL;
    JsonObject *q;

    v = qmp_execute(qmp, "query-version", NULL, &err);
    g_assert_no_error(err);
    q = json_object_get_object_member(json_node_get_object(v), "qemu");
    return g_strdup_printf("pc-q35-%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT,
                           json_object_get_int_member(q, "major"),
                           json_object_get_int_member(q, "minor"));
}

static GKeyFile *load_report(const char *path)
{
    GKeyFile *kf = g_key_file_new();
    GError *err = NULL;

    g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err);
    g_assert_no_error(err);
    return kf;
}

static char *report_get(GKeyFile *kf, const char *call, const char *key)
{
    GError *err = NULL;
    char *v = g_key_file_get_string(kf, call, key, &err);

    if (err) {
        g_error("report [%s] %s: %s", call, key, err->message);
    }
    return v;
}

/*
 * What the transport reported for @call: the machine, the CPU and, with
 * x-ignore-shared, exactly the one RAM block of the memory-backend-file
 * @ram_path of @size bytes at @offset in it.
 */
static void check_vm(GKeyFile *kf, const char *call, const char *machine,
                     const char *ram_path, guint64 size, guint64 offset,
                     const char *flags, gboolean probe)
{
    g_autofree char *m = report_get(kf, call, "machine");
    g_autofree char *cpu = report_get(kf, call, "cpu");
    g_autofree char *nr = report_get(kf, call, "nr_ram");
    g_autofree char *name = NULL, *sz = NULL, *dev = NULL, *ino = NULL;
    g_autofree char *off = NULL, *fl = NULL, *pr = NULL;
    g_autofree char *want_dev = NULL, *want_ino = NULL;
    struct stat st;

    g_test_message("[%s] machine %s, cpu %s, %s RAM block(s)", call, m, cpu,
                   nr);
    g_assert_cmpstr(m, ==, machine);
    g_assert_cmpstr(cpu, ==, "qemu64");
    if (!ram_path) {
        g_assert_cmpstr(nr, ==, "0");
        return;
    }
    g_assert_cmpstr(nr, ==, "1");
    name = report_get(kf, call, "ram0.name");
    sz = report_get(kf, call, "ram0.size");
    dev = report_get(kf, call, "ram0.fd_dev");
    ino = report_get(kf, call, "ram0.fd_ino");
    off = report_get(kf, call, "ram0.fd_offset");
    fl = report_get(kf, call, "ram0.flags");
    pr = report_get(kf, call, "ram0.probe");
    g_test_message("[%s] %s: %s bytes, dev %s ino %s, offset %s, flags %s, "
                   "probe %s", call, name, sz, dev, ino, off, fl, pr);
    /* -machine memory-backend=ram0: the block is the backend's */
    g_assert_cmpstr(name, ==, "ram0");
    g_assert_cmpuint(g_ascii_strtoull(sz, NULL, 10), ==, size);
    g_assert_cmpint(stat(ram_path, &st), ==, 0);
    want_dev = g_strdup_printf("%lld", (long long)st.st_dev);
    want_ino = g_strdup_printf("%lld", (long long)st.st_ino);
    g_assert_cmpstr(dev, ==, want_dev);
    g_assert_cmpstr(ino, ==, want_ino);
    g_assert_cmpuint(g_ascii_strtoull(off, NULL, 10), ==, offset);
    g_assert_cmpstr(fl, ==, flags);
    if (probe) {
        g_assert_cmpuint(g_ascii_strtoull(pr, NULL, 16), ==, PROBE_WORD);
    }
}

/* @args with the memory-backend-file's options extended by @extra. */
static GStrv backend_plus(GStrv args, const char *extra)
{
    GStrv out = g_strdupv(args);

    for (guint i = 0; out[i]; i++) {
        if (g_str_has_prefix(out[i], "memory-backend-file,")) {
            char *o = g_strconcat(out[i], extra, NULL);

            g_free(out[i]);
            out[i] = o;
        }
    }
    return out;
}

/*
 * x-ignore-shared: QEMU describes the RAM it leaves in place, the same
 * way to out_open, out_commit and in_open.  @extra goes into the
 * memory-backend-file's options.
 */
static void check_vm_cycle(const char *extra, guint64 offset,
                           const char *flags)
{
    g_autofree char *report = NULL, *opts = NULL, *uri = NULL;
    g_autofree char *machine = NULL, *ram = NULL;
    g_autoptr(GKeyFile) kf = NULL;
    g_autoptr(QemuProc) src = NULL, dst = NULL;
    g_auto(GStrv) args = NULL;
    Fixture f = { 0 };
    GError *err = NULL;

    fixture_init(&f);
    report = g_build_filename(f.dir, "vm-report", NULL);
    ram = g_build_filename(f.dir, "ram", NULL);
    opts = g_strconcat(",report=", report, NULL);
    args = backend_plus(f.args, extra);
    src = save_opts(&f, args, CPR_SETUP_SHARED, 0x34, opts);
    machine = q35_machine(qemu_proc_qmp(src));
    g_clear_pointer(&src, qemu_proc_free);

    /* the same command line restores from the same RAM file */
    dst = start(&f, args, "dst", "defer");
    cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    uri = g_strconcat("test-io1:", f.image, opts, NULL);
    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 30000, &err);
    g_assert_no_error(err);

    kf = load_report(report);
    check_vm(kf, "out_open", machine, ram, 64 << 20, offset, flags, TRUE);
    check_vm(kf, "out_commit", machine, ram, 64 << 20, offset, flags, TRUE);
    check_vm(kf, "in_open", machine, ram, 64 << 20, offset, flags, TRUE);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

static void test_vm_ignore_shared(void)
{
    check_vm_cycle("", 0, "shared");
}

/* An offset into the RAM file, and prealloc=on. */
static void test_vm_offset_prealloc(void)
{
    check_vm_cycle(",offset=2097152,prealloc=on", 2097152,
                   "shared;prealloc");
}

/*
 * pmem=on (on /dev/shm, not DAX: QEMU warns and maps it without
 * MAP_SYNC, but the block is still the pmem backend's).
 */
static void test_vm_pmem(void)
{
    check_vm_cycle(",pmem=on", 0, "shared;pmem");
}

/* Without x-ignore-shared the stream carries the RAM: no block. */
static void test_vm_full_ram(void)
{
    static const CprSetup full = { .ignore_shared = FALSE };
    g_autofree char *report = NULL, *opts = NULL, *machine = NULL;
    g_autoptr(GKeyFile) kf = NULL;
    g_autoptr(QemuProc) src = NULL;
    Fixture f = { 0 };

    fixture_init(&f);
    report = g_build_filename(f.dir, "vm-report", NULL);
    opts = g_strconcat(",report=", report, NULL);
    src = save_opts(&f, f.args, &full, 0x35, opts);
    machine = q35_machine(qemu_proc_qmp(src));
    kf = load_report(report);
    check_vm(kf, "out_open", machine, NULL, 0, 0, NULL, FALSE);
    check_vm(kf, "out_commit", machine, NULL, 0, 0, NULL, FALSE);
    g_clear_pointer(&src, qemu_proc_free);
    fixture_free(&f);
}

/* HostInfo.warn: a transport's warning is a QEMU warning. */
static void test_warn(void)
{
    g_autoptr(QemuProc) src = NULL;
    g_autofree char *log = NULL;
    Fixture f = { 0 };

    fixture_init(&f);
    src = save_opts(&f, f.args, NULL, 0x36,
                    ",warn=test-io1 says: mind the gap");
    log = qemu_proc_log(src);
    g_test_message("log: %s", log);
    g_assert_nonnull(strstr(log, "warning: test-io1 says: mind the gap"));
    g_clear_pointer(&src, qemu_proc_free);
    fixture_free(&f);
}

static const char *const trace_events[] = {
    "transport_plugin_load", "transport_plugin_open",
    "transport_plugin_new_channel", "transport_plugin_commit",
    "transport_plugin_abort", "transport_plugin_close",
    "transport_plugin_error", NULL,
};

/* qemu-system-x86_64 -trace help lists every transport trace event. */
static void test_trace_listed(void)
{
    const char *argv[] = { test_env_qemu(), "-trace", "help", NULL };
    g_autofree char *out = NULL, *errout = NULL;
    GError *err = NULL;
    int status;

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                 &out, &errout, &status, &err);
    g_assert_no_error(err);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (guint i = 0; trace_events[i]; i++) {
        g_autofree char *line = g_strconcat("\n", trace_events[i], "\n",
                                            NULL);

        g_assert_nonnull(strstr(out, line));
    }
}

/* @log has a line for @event ("event " or "event:" follows the name). */
static gboolean traced(const char *log, const char *event, const char *with)
{
    for (const char *l = log; (l = strstr(l, event)); l++) {
        const char *eol = strchr(l, '\n');
        g_autofree char *line = eol ? g_strndup(l, eol - l) : g_strdup(l);

        if (!with || strstr(line, with)) {
            return TRUE;
        }
    }
    return FALSE;
}

/*
 * -trace 'transport_plugin_*': a failed commit traces the error and the
 * abort; a save traces load, open, commit and close; a restore traces
 * its open and close.
 */
static void test_trace_fires(void)
{
    static const char *const extra[] = {
        "-trace", "transport_plugin_*", NULL,
    };
    g_autofree char *uri = NULL, *flog = NULL, *log = NULL, *dlog = NULL;
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) src = NULL, dst = NULL;
    Fixture f = { 0 };
    GError *err = NULL;

    fixture_init(&f);
    args = args_plus(f.args, extra);

    /* a commit that fails: the error, then the abort; the VM runs on */
    src = start(&f, args, "src", NULL);
    uri = g_strconcat("test-io1:", f.image, ",fail-commit", NULL);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_clear_error(&err);
    qmp_wait_status(qemu_proc_qmp(src), "running", 30000, &err);
    g_assert_no_error(err);
    flog = qemu_proc_log(src);
    g_test_message("failed save: %s", flog);
    g_assert_true(traced(flog, "transport_plugin_load", "test-io1"));
    g_assert_true(traced(flog, "transport_plugin_error", "out_commit"));
    g_assert_true(traced(flog, "transport_plugin_abort", "test-io1"));
    g_assert_true(traced(flog, "transport_plugin_close", " out"));

    /* then a save that works: open, commit, close and nothing else */
    g_free(uri);
    uri = g_strconcat("test-io1:", f.image, NULL);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
    g_assert_no_error(err);
    log = qemu_proc_log(src);
    g_test_message("save: %s", log + strlen(flog));
    g_assert_true(traced(log + strlen(flog), "transport_plugin_open",
                         " out "));
    g_assert_true(traced(log + strlen(flog), "transport_plugin_commit",
                         "test-io1"));
    g_assert_true(traced(log + strlen(flog), "transport_plugin_close",
                         " out"));
    g_assert_false(traced(log + strlen(flog), "transport_plugin_abort",
                          NULL));
    g_assert_false(traced(log + strlen(flog), "transport_plugin_error",
                          NULL));
    g_clear_pointer(&src, qemu_proc_free);

    dst = start(&f, args, "dst", "defer");
    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 30000, &err);
    g_assert_no_error(err);
    dlog = qemu_proc_log(dst);
    g_test_message("restore: %s", dlog);
    g_assert_true(traced(dlog, "transport_plugin_open", " in "));
    g_assert_true(traced(dlog, "transport_plugin_close", " in"));
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/transport-abi/read-error-in-error-desc",
                    test_read_error);
    g_test_add_func("/transport-abi/incoming-uri-scheme-with-digit",
                    test_incoming_uri_scheme);
    g_test_add_func("/transport-abi/defer-loads-nothing",
                    test_defer_loads_nothing);
    g_test_add_func("/transport-abi/preload/source", test_preload_source);
    g_test_add_func("/transport-abi/preload/destination",
                    test_preload_destination);
    g_test_add_func("/transport-abi/preload/warns", test_preload_warns);
    g_test_add_func("/transport-abi/vm/ignore-shared", test_vm_ignore_shared);
    g_test_add_func("/transport-abi/vm/offset-prealloc",
                    test_vm_offset_prealloc);
    g_test_add_func("/transport-abi/vm/pmem", test_vm_pmem);
    g_test_add_func("/transport-abi/vm/full-ram", test_vm_full_ram);
    g_test_add_func("/transport-abi/warn", test_warn);
    g_test_add_func("/transport-abi/trace/listed", test_trace_listed);
    g_test_add_func("/transport-abi/trace/fires", test_trace_fires);
    return g_test_run();
}
