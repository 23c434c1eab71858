/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a transport plugin cannot serve is refused by the command itself,
 * before the migration state changes, as stock QEMU refuses an unknown
 * protocol: the command fails with a message naming the cause,
 * query-migrate's status is what it was, no MIGRATION event is sent, and
 * the VM goes on (running on a source, waiting on a destination).
 *
 * - a scheme no transport serves (tpc:, a typo of tcp:), as a URI and in
 *   the QMP "channels" form, outgoing and incoming;
 * - mode cpr-transfer, whose destination would load the previous image;
 * - capabilities and parameters that need a return path: return-path,
 *   switchover-ack, postcopy-ram, x-colo, TLS.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>

#define RAM_SIZE  "64M"
#define CMOS_BYTE 0x42

static void run_ok(Qmp *qmp, const char *cmd, const char *args_json)
{
    g_autoptr(JsonObject) args = qmp_args(args_json);
    GError *err = NULL;

    qmp_run(qmp, cmd, args, &err);
    g_assert_no_error(err);
}

/* The command must fail; returns its message (g_free). */
static char *run_fails(Qmp *qmp, const char *cmd, const char *args_json)
{
    g_autoptr(JsonObject) args = qmp_args(args_json);
    GError *err = NULL;
    char *msg;

    g_assert_false(qmp_run(qmp, cmd, args, &err));
    g_assert_nonnull(err);
    g_test_message("%s: %s", cmd, err->message);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* query-migrate's status, "none" when QEMU leaves it out. */
static char *migrate_status(Qmp *qmp)
{
    g_autoptr(JsonNode) ret = NULL;
    GError *err = NULL;

    ret = qmp_execute(qmp, "query-migrate", NULL, &err);
    g_assert_no_error(err);
    return g_strdup(json_object_get_string_member_with_default(
        json_node_get_object(ret), "status", "none"));
}

static void assert_no_migration_event(Qmp *qmp)
{
    g_autoptr(JsonObject) ev = NULL;
    GError *err = NULL;

    ev = qmp_wait_event(qmp, "MIGRATION", 300, &err);
    if (ev) {
        g_autofree char *text = NULL;
        g_autoptr(JsonNode) node = json_node_alloc();

        json_node_init_object(node, ev);
        text = json_to_string(node, FALSE);
        g_error("unexpected event: %s", text);
    }
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_clear_error(&err);
}

static void assert_status(QemuProc *p, const char *want)
{
    g_autofree char *status = NULL;
    GError *err = NULL;

    status = qmp_query_status(qemu_proc_qmp(p), &err);
    g_assert_no_error(err);
    g_assert_cmpstr(status, ==, want);
}

typedef struct {
    char *dir;
    char *image;        /* a committed pmem: image, for the destination */
    GStrv args;
} Fixture;

static QemuProc *start(Fixture *f, const char *name, const char *incoming)
{
    GError *err = NULL;
    QemuProc *p = halt_vm_start(f->dir, f->args, name, incoming, &err);

    g_assert_no_error(err);
    run_ok(qemu_proc_qmp(p), "migrate-set-capabilities",
           "{\"capabilities\": [{\"capability\": \"events\", "
           "\"state\": true}]}");
    return p;
}

static void setup_cpr_reboot(Qmp *qmp)
{
    run_ok(qmp, "migrate-set-capabilities",
           "{\"capabilities\": [{\"capability\": \"x-ignore-shared\", "
           "\"state\": true}]}");
    run_ok(qmp, "migrate-set-parameters", "{\"mode\": \"cpr-reboot\"}");
}

static void fixture_init(Fixture *f, gboolean with_image)
{
    f->dir = test_env_mkdtemp(TEST_BASE_SHM);
    f->image = g_strdup_printf("pmem:%s/vm.cpr", f->dir);
    f->args = halt_vm_args(f->dir, "ram", RAM_SIZE);
    if (with_image) {
        g_autoptr(QemuProc) src = start(f, "image", NULL);
        GError *err = NULL;

        setup_cpr_reboot(qemu_proc_qmp(src));
        halt_vm_cmos_write(qemu_proc_qtest(src), CMOS_BYTE, 0x24);
        qmp_migrate(qemu_proc_qmp(src), f->image, &err);
        g_assert_no_error(err);
        qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
        g_assert_no_error(err);
    }
}

static void fixture_free(Fixture *f)
{
    test_env_rmtree(f->dir);
    g_strfreev(f->args);
    g_free(f->image);
    g_free(f->dir);
}

/* The destination can still restore the image after the refusals. */
static void assert_restores(QemuProc *dst, const char *image)
{
    Qmp *qmp = qemu_proc_qmp(dst);
    GError *err = NULL;

    setup_cpr_reboot(qmp);
    qmp_migrate_incoming(qmp, image, &err);
    g_assert_no_error(err);
    qmp_wait_status(qmp, "running", 30000, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==,
                     0x24);
}

/* ---- a scheme no transport serves ---- */

#define TPC_URI "{\"uri\": \"tpc:/tmp/vm\"}"
#define TPC_CHANNELS \
    "{\"channels\": [{\"channel-type\": \"main\", \"addr\": " \
    "{\"transport\": \"plugin\", \"scheme\": \"tpc\", \"target\": \"/tmp/vm\"}}]}"

static void check_unknown_scheme(Qmp *qmp, const char *cmd, const char *args)
{
    g_autofree char *before = migrate_status(qmp);
    g_autofree char *msg = run_fails(qmp, cmd, args);
    g_autofree char *after = migrate_status(qmp);

    g_assert_nonnull(strstr(msg, "'tpc'"));
    g_assert_cmpstr(after, ==, before);
    assert_no_migration_event(qmp);
}

static void test_unknown_scheme_outgoing(void)
{
    Fixture f = { 0 };
    g_autoptr(QemuProc) src = NULL;

    fixture_init(&f, FALSE);
    src = start(&f, "src", NULL);
    check_unknown_scheme(qemu_proc_qmp(src), "migrate", TPC_URI);
    check_unknown_scheme(qemu_proc_qmp(src), "migrate", TPC_CHANNELS);
    assert_status(src, "running");
    g_clear_pointer(&src, qemu_proc_free);
    fixture_free(&f);
}

static void test_unknown_scheme_incoming(void)
{
    Fixture f = { 0 };
    g_autoptr(QemuProc) dst = NULL;

    fixture_init(&f, TRUE);
    dst = start(&f, "dst", "defer");
    check_unknown_scheme(qemu_proc_qmp(dst), "migrate-incoming", TPC_URI);
    check_unknown_scheme(qemu_proc_qmp(dst), "migrate-incoming",
                         TPC_CHANNELS);
    assert_status(dst, "inmigrate");
    assert_restores(dst, f.image);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/* ---- cpr-transfer ---- */

static void check_cpr_transfer(Qmp *qmp, const char *cmd, const char *args)
{
    g_autofree char *before = migrate_status(qmp);
    g_autofree char *msg = run_fails(qmp, cmd, args);
    g_autofree char *after = migrate_status(qmp);

    g_assert_nonnull(strstr(msg, "cpr-transfer"));
    g_assert_nonnull(strstr(msg, "'pmem:'"));
    g_assert_cmpstr(after, ==, before);
    assert_no_migration_event(qmp);
}

static void test_cpr_transfer_outgoing(void)
{
    Fixture f = { 0 };
    g_autoptr(QemuProc) src = NULL;
    g_autofree char *uri = NULL, *channels = NULL;

    fixture_init(&f, FALSE);
    uri = g_strdup_printf("{\"uri\": \"pmem:%s/new.cpr\"}", f.dir);
    /* with the cpr channel cpr-transfer needs, so only the transport is wrong */
    channels = g_strdup_printf(
        "{\"channels\": [{\"channel-type\": \"main\", \"addr\": "
        "{\"transport\": \"plugin\", \"scheme\": \"pmem\", "
        "\"target\": \"%s/new.cpr\"}}, {\"channel-type\": \"cpr\", "
        "\"addr\": {\"transport\": \"socket\", \"type\": \"unix\", "
        "\"path\": \"%s/cpr.sock\"}}]}", f.dir, f.dir);
    src = start(&f, "src", NULL);
    run_ok(qemu_proc_qmp(src), "migrate-set-parameters",
           "{\"mode\": \"cpr-transfer\"}");
    check_cpr_transfer(qemu_proc_qmp(src), "migrate", uri);
    check_cpr_transfer(qemu_proc_qmp(src), "migrate", channels);
    assert_status(src, "running");
    g_clear_pointer(&src, qemu_proc_free);
    fixture_free(&f);
}

/* The destination must not load the image a previous save left. */
static void test_cpr_transfer_incoming(void)
{
    Fixture f = { 0 };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *uri = NULL;

    fixture_init(&f, TRUE);
    uri = g_strdup_printf("{\"uri\": \"%s\"}", f.image);
    dst = start(&f, "dst", "defer");
    run_ok(qemu_proc_qmp(dst), "migrate-set-parameters",
           "{\"mode\": \"cpr-transfer\"}");
    check_cpr_transfer(qemu_proc_qmp(dst), "migrate-incoming", uri);
    assert_status(dst, "inmigrate");
    assert_restores(dst, f.image);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/* ---- what needs a return path ---- */

typedef struct {
    const char *id;         /* test path */
    const char *name;       /* in the expected message */
    const char *cmd;        /* sets it up */
    const char *args;
} NeedsReturnPath;

#define CAPS(...) \
    "{\"capabilities\": [" __VA_ARGS__ "]}"
#define CAP(c) "{\"capability\": \"" c "\", \"state\": true}"

static const NeedsReturnPath needs_rp[] = {
    { "return-path", "'return-path'", "migrate-set-capabilities",
      CAPS(CAP("return-path")) },
    { "switchover-ack", "'switchover-ack'", "migrate-set-capabilities",
      CAPS(CAP("return-path") ", " CAP("switchover-ack")) },
    { "postcopy-ram", "'postcopy-ram'", "migrate-set-capabilities",
      CAPS(CAP("postcopy-ram")) },
    { "x-colo", "'x-colo'", "migrate-set-capabilities", CAPS(CAP("x-colo")) },
    { "tls", "TLS", "migrate-set-parameters", "{\"tls-creds\": \"tls0\"}" },
};

/* FALSE (and the test skipped) if this QEMU cannot set it at all. */
static gboolean set_up(Qmp *qmp, const NeedsReturnPath *c)
{
    g_autoptr(JsonObject) args = qmp_args(c->args);
    GError *err = NULL;

    if (!qmp_run(qmp, c->cmd, args, &err)) {
        g_autofree char *why = g_strdup_printf("cannot set %s here: %s",
                                               c->name, err->message);

        g_test_skip(why);
        g_error_free(err);
        return FALSE;
    }
    return TRUE;
}

static void check_needs_rp(Qmp *qmp, const NeedsReturnPath *c,
                           const char *cmd, const char *args)
{
    g_autofree char *before = migrate_status(qmp);
    g_autofree char *msg = run_fails(qmp, cmd, args);
    g_autofree char *after = migrate_status(qmp);

    g_assert_nonnull(strstr(msg, c->name));
    g_assert_nonnull(strstr(msg, "one way"));
    g_assert_nonnull(strstr(msg, "'pmem:'"));
    g_assert_cmpstr(after, ==, before);
    assert_no_migration_event(qmp);
}

static void test_needs_rp_outgoing(gconstpointer data)
{
    const NeedsReturnPath *c = data;
    Fixture f = { 0 };
    g_autoptr(QemuProc) src = NULL;
    g_autofree char *uri = NULL;

    fixture_init(&f, FALSE);
    uri = g_strdup_printf("{\"uri\": \"pmem:%s/new.cpr\"}", f.dir);
    src = start(&f, "src", NULL);
    if (set_up(qemu_proc_qmp(src), c)) {
        check_needs_rp(qemu_proc_qmp(src), c, "migrate", uri);
        /* the guest was never stopped */
        assert_status(src, "running");
    }
    g_clear_pointer(&src, qemu_proc_free);
    fixture_free(&f);
}

static void test_needs_rp_incoming(void)
{
    const NeedsReturnPath *c = &needs_rp[0];
    Fixture f = { 0 };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *uri = NULL;

    fixture_init(&f, TRUE);
    uri = g_strdup_printf("{\"uri\": \"%s\"}", f.image);
    dst = start(&f, "dst", "defer");
    g_assert_true(set_up(qemu_proc_qmp(dst), c));
    check_needs_rp(qemu_proc_qmp(dst), c, "migrate-incoming", uri);
    assert_status(dst, "inmigrate");
    run_ok(qemu_proc_qmp(dst), "migrate-set-capabilities",
           CAPS("{\"capability\": \"return-path\", \"state\": false}"));
    assert_restores(dst, f.image);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/refusals/unknown-scheme/outgoing",
                    test_unknown_scheme_outgoing);
    g_test_add_func("/refusals/unknown-scheme/incoming",
                    test_unknown_scheme_incoming);
    g_test_add_func("/refusals/cpr-transfer/outgoing",
                    test_cpr_transfer_outgoing);
    g_test_add_func("/refusals/cpr-transfer/incoming",
                    test_cpr_transfer_incoming);
    for (guint i = 0; i < G_N_ELEMENTS(needs_rp); i++) {
        g_autofree char *path = g_strdup_printf(
            "/refusals/needs-return-path/outgoing/%s", needs_rp[i].id);

        g_test_add_data_func(path, &needs_rp[i], test_needs_rp_outgoing);
    }
    g_test_add_func("/refusals/needs-return-path/incoming",
                    test_needs_rp_incoming);
    return g_test_run();
}
