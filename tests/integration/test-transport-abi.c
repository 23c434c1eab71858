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
 *   destination; a name that does not load is a warning.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>

#define RAM_SIZE   "64M"
#define CMOS_BYTE  0x43
#define FAIL_AT    65536
#define PRELOAD    "migration.x-preload-transports="

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
    return g_test_run();
}
