/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exec: helper (docs/exec-helper.md) with a stock, unpatched QEMU
 * ($CPR_QEMU, Debian's 10.0.2 in CI):
 *
 *  - a Linux guest saved with "exec:cpr-pmem save" and restored with
 *    "exec:cpr-pmem load": its tick counter goes on;
 *  - a corrupt image: the destination QEMU gets no byte of it and
 *    reports the failure, the guest never runs;
 *  - a save that does not finish, three ways (the helper SIGKILLed, the
 *    migration cancelled, QEMU SIGKILLed): nothing is committed, `wait`
 *    says so, and the previous generation is what a restore loads;
 *  - the binding (backend/BINDING.md), which the helper records and checks
 *    from its QEMU's /proc: stale RAM (the RAM file replaced by a copy
 *    taken seconds before the save), lost RAM (the file recreated, all
 *    zero) and an extra -device virtio-rng-pci are each refused before
 *    QEMU gets a byte, with a message naming them; then the same VM,
 *    corrected, continues; with CPR_PMEM_ALLOW=cmdline in the
 *    destination QEMU's environment (the helper's) the extra device loads,
 *    with the override's warning (a qtest VM).
 *
 * The qtest cases fill guest RAM and a CMOS byte with the generation
 * number and save without x-ignore-shared, so the stream carries RAM and
 * a restore onto an empty RAM file shows which generation it loaded.
 */
#include "cpr-cycle.h"
#include "guest.h"
#include "halt-vm.h"
#include "helper-status.h"
#include "reader.h"
#include "test-env.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_SIZE     "128M"
#define RAM_BYTES    (128u << 20)
#define RAM_FIRST    (1u << 20)     /* below: VGA window and BIOS */
#define CMOS_BYTE    0x42
#define SLOW_BPS     (8 << 20)      /* 128 MiB take 16 s at this rate */
#define BOOT_TIMEOUT_MS 120000

typedef struct Tool {
    int status;
    char *out, *err;
} Tool;

/* cpr-pmem with up to four arguments. */
static Tool tool(const char *a, const char *b, const char *c, const char *d)
{
    const char *argv[] = { CPR_PMEM, a, b, c, d, NULL };
    GError *err = NULL;
    Tool t = { 0 };

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT,
                               NULL, NULL, &t.out, &t.err, &t.status, &err));
    g_assert_no_error(err);
    t.status = WIFEXITED(t.status) ? WEXITSTATUS(t.status) : 128;
    g_test_message("cpr-pmem %s %s %s -> %d\n%s%s", a, b ? b : "",
                   c ? c : "", t.status, t.out, t.err);
    return t;
}

static void expect(Tool t, int status, const char *text)
{
    g_assert_cmpint(t.status, ==, status);
    if (text && !strstr(t.out, text) && !strstr(t.err, text)) {
        g_error("cpr-pmem said neither on stdout nor stderr \"%s\"", text);
    }
    g_free(t.out);
    g_free(t.err);
}

static char *save_uri(const char *image, const char *id)
{
    return g_strdup_printf("exec:%s save --id=%s %s", CPR_PMEM, id, image);
}

static char *load_uri(const char *image)
{
    return g_strdup_printf("exec:%s load %s", CPR_PMEM, image);
}

static char *id_arg(const char *id)
{
    return g_strdup_printf("--id=%s", id);
}

static void assert_log_has(QemuProc *p, const char *text)
{
    g_autofree char *log = qemu_proc_log(p);

    if (!strstr(log, text)) {
        g_error("QEMU's log lacks \"%s\":\n%s", text, log);
    }
}

/* ---- a Linux guest --------------------------------------------------- */

static void test_guest_cycle(void)
{
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *disk = test_env_mkdtemp(TEST_BASE_DISK);
    g_autofree char *ram = g_build_filename(shm, "ram", NULL);
    g_autofree char *serial = g_build_filename(shm, "serial.log", NULL);
    g_autofree char *image = g_build_filename(disk, "vm.cpr", NULL);
    g_autofree char *uri = save_uri(image, "guest1");
    g_autofree char *in_uri = load_uri(image);
    g_autofree char *id = id_arg("guest1");
    const char *qemu = test_env_qemu();
    const char *accel = guest_accel(qemu);
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(GArray) before = NULL;
    g_autofree char *status = NULL;
    guint last_before;
    CprSample t;
    GError *err = NULL;

    cpr_sample_clear(&t);
    args = guest_args(accel, ram, serial, &err);
    g_assert_no_error(err);
    QemuProcOpts opts = {
        .binary = qemu, .args = (const char *const *)args,
        .dir = shm, .name = "src",
    };
    g_test_message("qemu %s, accel %s, uri %s", qemu, accel, uri);
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, 5, BOOT_TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);

    cpr_save_start(src, CPR_SETUP_SHARED, uri, &err);
    g_assert_no_error(err);
    cpr_save_finish(src, &t, NULL, NULL, &err);
    g_assert_no_error(err);
    /* "completed" came before the helper's commit: wait for it */
    expect(tool("wait", id, image, NULL), 0, "committed generation 1");
    cpr_save_quit(src, &t, &err);
    g_assert_no_error(err);
    assert_log_has(src, "committed generation 1");
    expect(tool("check", image, NULL, NULL), 0, "OK, generation 1");
    before = guest_ticks(serial);
    last_before = g_array_index(before, guint, before->len - 1);

    opts.name = "dst";
    dst = cpr_restore(&opts, CPR_SETUP_SHARED, in_uri, &t, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, last_before + 10, 30000, NULL, &err);
    g_assert_no_error(err);
    status = qmp_query_status(qemu_proc_qmp(dst), &err);
    g_assert_no_error(err);
    g_assert_cmpstr(status, ==, "running");
    assert_log_has(dst, "generation 1 verified");
    g_test_message("pause %.2f ms, restore %.2f ms", t.pause_us / 1e3,
                   t.incoming_us / 1e3);

    /* 1, 2, 3, ...: nothing lost, repeated, or restarted */
    guest_assert_ticks_carry_on(serial, before->len);
    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    test_env_rmtree(disk);
    test_env_rmtree(shm);
}

/* ---- the binding ------------------------------------------------------ */

static void run(const char *const *argv)
{
    GError *err = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                               &status, &err));
    g_assert_no_error(err);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/*
 * A destination started with @args restores @uri: refused, the guest
 * never ran, and QEMU's log (the helper's stderr) has each of @want.
 */
static void assert_refused(const QemuProcOpts *base, GStrv args,
                           const char *name, const char *uri,
                           const char *const *want)
{
    QemuProcOpts o = *base;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(JsonObject) mi = json_object_new();
    g_autofree char *status = NULL;
    g_autofree char *log = NULL;
    GError *err = NULL;

    o.args = (const char *const *)args;
    o.name = name;
    dst = qemu_proc_start_incoming(&o, "defer", &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    json_object_set_string_member(mi, "uri", uri);
    json_object_set_boolean_member(mi, "exit-on-error", FALSE);
    qmp_run(qemu_proc_qmp(dst), "migrate-incoming", mi, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(dst), 60000, NULL, &err);
    if (!err) {
        g_autofree char *l = qemu_proc_log(dst);

        g_error("%s: the restore was not refused:\n%s", name, l);
    }
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_clear_error(&err);
    status = qmp_query_status(qemu_proc_qmp(dst), &err);
    g_assert_no_error(err);
    g_assert_cmpstr(status, ==, "inmigrate");
    log = qemu_proc_log(dst);
    g_test_message("%s refused:\n%s", name, log);
    for (; *want; want++) {
        assert_log_has(dst, *want);
    }
    assert_log_has(dst, "nothing of it was sent to QEMU");
}

/* exec:cpr-pmem load into a new destination started with @args. */
static QemuProc *incoming(const char *dir, GStrv args, const char *name,
                          const char *uri)
{
    g_autoptr(JsonObject) mi = json_object_new();
    GError *err = NULL;
    QemuProc *dst = halt_vm_start(dir, args, name, "defer", &err);

    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    json_object_set_string_member(mi, "uri", uri);
    json_object_set_boolean_member(mi, "exit-on-error", FALSE);
    qmp_run(qemu_proc_qmp(dst), "migrate-incoming", mi, &err);
    g_assert_no_error(err);
    return dst;
}

static void test_binding_override(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *image = g_build_filename(dir, "vm.cpr", NULL);
    g_autofree char *uri = save_uri(image, "over1");
    g_autofree char *in_uri = load_uri(image);
    g_autofree char *id = id_arg("over1");
    g_auto(GStrv) args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_autoptr(GStrvBuilder) sb = g_strv_builder_new();
    g_auto(GStrv) rng_args = NULL;
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    GError *err = NULL;
    guint32 v = 0;

    g_strv_builder_addv(sb, (const char **)args);
    g_strv_builder_add_many(sb, "-device", "virtio-rng-pci", NULL);
    rng_args = g_strv_builder_end(sb);
    src = halt_vm_start(dir, args, "src", NULL, &err);
    g_assert_no_error(err);
    qtest_writel(qemu_proc_qtest(src), RAM_FIRST, 0x0badcafe, &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(src), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
    g_assert_no_error(err);
    expect(tool("wait", id, image, NULL), 0, "committed generation 1");
    qmp_quit(qemu_proc_qmp(src), &err);
    g_assert_no_error(err);

    /* refused without the override */
    dst = incoming(dir, rng_args, "dst1", in_uri);
    qmp_wait_migration(qemu_proc_qmp(dst), 30000, NULL, &err);
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_clear_error(&err);
    assert_log_has(dst, "+ -device virtio-rng-pci");
    g_clear_pointer(&dst, qemu_proc_free);

    /* loaded with it: QEMU's environment is the helper's */
    g_setenv("CPR_PMEM_ALLOW", "cmdline", TRUE);
    dst = incoming(dir, rng_args, "dst2", in_uri);
    g_unsetenv("CPR_PMEM_ALLOW");
    qmp_wait_status(qemu_proc_qmp(dst), "running", 60000, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    assert_log_has(dst, "CPR_PMEM_ALLOW=cmdline: resuming");
    assert_log_has(dst, "+ -device virtio-rng-pci");
    qtest_readl(qemu_proc_qtest(dst), RAM_FIRST, &v, &err);
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, 0x0badcafe);
    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    test_env_rmtree(dir);
}

/* Save a halting VM with a raw disk through exec:, quit it. */
static void disk_vm_saved(const char *dir, GStrv args, const char *uri,
                          const char *image, const char *id)
{
    g_autoptr(QemuProc) src = NULL;
    g_autofree char *idarg = id_arg(id);
    GError *err = NULL;

    src = halt_vm_start(dir, args, "src", NULL, &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(src), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
    g_assert_no_error(err);
    expect(tool("wait", idarg, image, NULL), 0, "committed generation");
    qmp_quit(qemu_proc_qmp(src), &err);
    g_assert_no_error(err);
}

/*
 * The disk binding with stock QEMU (the helper finds the image among its
 * QEMU's descriptors): an unchanged raw disk loads; 4 KiB of it
 * rewritten after the quit is refused naming it; CPR_PMEM_ALLOW=disk
 * loads it with the warning.
 */
static void test_disk(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_DISK);
    g_autofree char *image = g_build_filename(dir, "vm.cpr", NULL);
    g_autofree char *raw = g_build_filename(dir, "disk.raw", NULL);
    g_autofree char *of = g_strdup_printf("of=%s", raw);
    g_autofree char *drive = g_strdup_printf("file=%s,format=raw,if=virtio",
                                             raw);
    g_autofree char *uri = save_uri(image, "disk1");
    g_autofree char *in_uri = load_uri(image);
    g_auto(GStrv) base = halt_vm_args(dir, "ram", RAM_SIZE);
    g_autoptr(GStrvBuilder) sb = g_strv_builder_new();
    g_auto(GStrv) args = NULL;
    g_autoptr(QemuProc) dst = NULL;
    const char *mk[] = { "dd", "if=/dev/urandom", of, "bs=1M", "count=4",
                         "status=none", NULL };
    const char *rw[] = { "dd", "if=/dev/urandom", of, "bs=4096", "count=1",
                         "seek=100", "conv=notrunc", "status=none", NULL };
    const char *const want[] = { "disk.raw: modified since the save",
                                 "CPR_PMEM_ALLOW=disk overrides", NULL };
    GError *err = NULL;

    run(mk);
    g_strv_builder_addv(sb, (const char **)base);
    g_strv_builder_add_many(sb, "-drive", drive, NULL);
    args = g_strv_builder_end(sb);

    disk_vm_saved(dir, args, uri, image, "disk1");
    expect(tool("info", image, NULL, NULL), 0, "disks: 1");
    dst = incoming(dir, args, "dst0", in_uri);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 60000, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    g_clear_pointer(&dst, qemu_proc_free);

    disk_vm_saved(dir, args, uri, image, "disk1");
    run(rw);
    {
        QemuProcOpts o = { .binary = test_env_qemu(), .dir = dir };

        assert_refused(&o, args, "dst1", in_uri, want);
    }
    g_setenv("CPR_PMEM_ALLOW", "disk", TRUE);
    dst = incoming(dir, args, "dst2", in_uri);
    g_unsetenv("CPR_PMEM_ALLOW");
    qmp_wait_status(qemu_proc_qmp(dst), "running", 60000, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    assert_log_has(dst, "CPR_PMEM_ALLOW=disk: resuming");
    assert_log_has(dst, "disk.raw: modified since the save");
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

static void test_binding(void)
{
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *disk = test_env_mkdtemp(TEST_BASE_DISK);
    g_autofree char *ram = g_build_filename(shm, "ram", NULL);
    g_autofree char *good = g_build_filename(shm, "ram.good", NULL);
    g_autofree char *stale = g_build_filename(shm, "ram.stale", NULL);
    g_autofree char *serial = g_build_filename(shm, "serial.log", NULL);
    g_autofree char *image = g_build_filename(disk, "vm.cpr", NULL);
    g_autofree char *uri = save_uri(image, "bind1");
    g_autofree char *in_uri = load_uri(image);
    g_autofree char *id = id_arg("bind1");
    const char *qemu = test_env_qemu();
    const char *accel = guest_accel(qemu);
    static const char *const rng[] = { "-device", "virtio-rng-pci", NULL };
    const GuestConfig with_rng = { .extra = rng };
    g_auto(GStrv) args = NULL;
    g_auto(GStrv) rng_args = NULL;
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(GArray) before = NULL;
    guint last_before, at_copy = 0;
    CprSample t;
    GError *err = NULL;

    cpr_sample_clear(&t);
    args = guest_args(accel, ram, serial, &err);
    g_assert_no_error(err);
    rng_args = guest_args_config(accel, ram, serial, &with_rng, &err);
    g_assert_no_error(err);
    QemuProcOpts opts = {
        .binary = qemu, .args = (const char *const *)args,
        .dir = shm, .name = "src",
    };
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, 5, BOOT_TIMEOUT_MS, &at_copy, &err);
    g_assert_no_error(err);
    /* the stale copy, taken a few seconds before the save */
    run((const char *const[]){ "cp", ram, stale, NULL });
    guest_wait_tick(serial, at_copy + 15, 30000, NULL, &err);
    g_assert_no_error(err);
    cpr_save_start(src, CPR_SETUP_SHARED, uri, &err);
    g_assert_no_error(err);
    cpr_save_finish(src, &t, NULL, NULL, &err);
    g_assert_no_error(err);
    expect(tool("wait", id, image, NULL), 0, "committed generation 1");
    cpr_save_quit(src, &t, &err);
    g_assert_no_error(err);
    before = guest_ticks(serial);
    last_before = g_array_index(before, guint, before->len - 1);
    g_test_message("stale copy at tick %u, saved at tick %u", at_copy,
                   last_before);

    /* stale RAM: the copy put in the RAM file's place */
    g_assert_cmpint(rename(ram, good), ==, 0);
    g_assert_cmpint(rename(stale, ram), ==, 0);
    assert_refused(&opts, args, "dst-stale", in_uri, (const char *const[]){
        ram, "not the file the VM was saved with",
        "refusing to resume from", NULL });

    /* lost RAM: the file recreated, all zero */
    g_assert_cmpint(g_unlink(ram), ==, 0);
    run((const char *const[]){ "truncate", "-s", "256M", ram, NULL });
    assert_refused(&opts, args, "dst-lost", in_uri, (const char *const[]){
        ram, "not the file the VM was saved with",
        "the RAM looks newly created", NULL });

    /* the right RAM, and an extra device */
    g_assert_cmpint(g_unlink(ram), ==, 0);
    g_assert_cmpint(rename(good, ram), ==, 0);
    assert_refused(&opts, rng_args, "dst-rng", in_uri, (const char *const[]){
        "the command line differs from the saved VM's",
        "+ -device virtio-rng-pci", NULL });

    /* corrected: the same VM goes on */
    opts.name = "dst";
    dst = cpr_restore(&opts, CPR_SETUP_SHARED, in_uri, &t, &err);
    g_assert_no_error(err);
    guest_wait_tick(serial, last_before + 10, 30000, NULL, &err);
    g_assert_no_error(err);
    assert_log_has(dst, "generation 1 verified");
    guest_assert_ticks_carry_on(serial, before->len);
    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    test_env_rmtree(disk);
    test_env_rmtree(shm);
}

/* ---- generations in RAM and CMOS -------------------------------------- */

typedef struct Ctx {
    char *dir, *image;
    GStrv src_args, dst_args;
} Ctx;

static void ctx_init(Ctx *c)
{
    c->dir = test_env_mkdtemp(TEST_BASE_SHM);
    c->image = g_build_filename(c->dir, "vm.cpr", NULL);
    c->src_args = halt_vm_args(c->dir, "ram-src", RAM_SIZE);
    c->dst_args = halt_vm_args(c->dir, "ram-dst", RAM_SIZE);
}

static void ctx_free(Ctx *c)
{
    test_env_rmtree(c->dir);
    g_free(c->dir);
    g_free(c->image);
    g_strfreev(c->src_args);
    g_strfreev(c->dst_args);
}

static const CprSetup full_ram = { .ignore_shared = FALSE };

/* A source whose RAM and CMOS hold generation @g, set up for a save. */
static QemuProc *source(Ctx *c, guint g)
{
    GError *err = NULL;
    QemuProc *p = halt_vm_start(c->dir, c->src_args, "src", NULL, &err);
    Qtest *qt;

    g_assert_no_error(err);
    qt = qemu_proc_qtest(p);
    qtest_memset(qt, RAM_FIRST, RAM_BYTES - RAM_FIRST, g, &err);
    g_assert_no_error(err);
    halt_vm_cmos_write(qt, CMOS_BYTE, g);
    cpr_setup(qemu_proc_qmp(p), &full_ram, &err);
    g_assert_no_error(err);
    return p;
}

static void save_generation(Ctx *c, guint g)
{
    g_autofree char *id = g_strdup_printf("gen%u", g);
    g_autofree char *uri = save_uri(c->image, id);
    g_autofree char *arg = id_arg(id);
    g_autofree char *want = g_strdup_printf("committed generation %u", g);
    g_autoptr(QemuProc) src = source(c, g);
    GError *err = NULL;

    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(src), 120000, NULL, &err);
    g_assert_no_error(err);
    expect(tool("wait", arg, c->image, NULL), 0, want);
    qmp_quit(qemu_proc_qmp(src), &err);
    g_assert_no_error(err);
}

/* Restore onto an empty RAM file through exec:cpr-pmem load. */
static guint restore_generation(Ctx *c)
{
    g_autofree char *fresh = g_build_filename(c->dir, "ram-dst", NULL);
    g_autofree char *uri = load_uri(c->image);
    g_autoptr(QemuProc) dst = NULL;
    GError *err = NULL;
    Qtest *qt;
    guint8 cmos, b;

    g_unlink(fresh);
    dst = halt_vm_start(c->dir, c->dst_args, "dst", "defer", &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(dst), &full_ram, &err);
    g_assert_no_error(err);
    qmp_migrate_incoming(qemu_proc_qmp(dst), uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 60000, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    qt = qemu_proc_qtest(dst);
    cmos = halt_vm_cmos_read(qt, CMOS_BYTE);
    for (guint64 a = RAM_FIRST; a < RAM_BYTES; a += 7u << 20) {
        qtest_readb(qt, a, &b, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(b, ==, cmos);
    }
    return cmos;
}

/* Until the status block shows a save running; its helper's pid. */
static pid_t helper_running(const char *image)
{
    for (int i = 0; i < 3000; i++) {
        CprHelperStatus st;
        CprDecode dec = CPR_DECODE_EMPTY;
        int fd = open(image, O_RDONLY);

        if (fd >= 0) {
            if (cpr_hs_read(fd, &st, &dec) == 0 && dec == CPR_DECODE_OK &&
                st.state == CPR_HS_RUNNING && cpr_hs_write_locked(fd)) {
                close(fd);
                return (pid_t)st.pid;
            }
            close(fd);
        }
        g_usleep(10000);
    }
    g_error("no save helper started on %s", image);
}

typedef enum { KILL_HELPER, CANCEL, KILL_QEMU } Interrupt;

static void interrupted_save(Interrupt how)
{
    static const char *const names[] = { "helper killed", "cancelled",
                                         "QEMU killed" };
    Ctx c = { 0 };
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(JsonObject) bw = json_object_new();
    g_autofree char *uri = NULL;
    g_autofree char *arg = id_arg("gen2");
    GError *err = NULL;
    pid_t helper;

    ctx_init(&c);
    save_generation(&c, 1);
    g_assert_cmpuint(restore_generation(&c), ==, 1);

    /* generation 2, slowly enough to be interrupted */
    src = source(&c, 2);
    json_object_set_int_member(bw, "max-bandwidth", SLOW_BPS);
    qmp_run(qemu_proc_qmp(src), "migrate-set-parameters", bw, &err);
    g_assert_no_error(err);
    uri = save_uri(c.image, "gen2");
    qmp_migrate(qemu_proc_qmp(src), uri, &err);
    g_assert_no_error(err);
    helper = helper_running(c.image);
    g_usleep(1000000);
    g_test_message("%s, 1 s into the save (helper pid %d)", names[how],
                   (int)helper);
    switch (how) {
    case KILL_HELPER:
        g_assert_cmpint(kill(helper, SIGKILL), ==, 0);
        qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
        g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
        g_test_message("QEMU: %s", err->message);
        g_assert_nonnull(strstr(err->message, "migration failed"));
        g_clear_error(&err);
        expect(tool("wait", arg, c.image, NULL), 1,
                    "ended without finishing the save");
        break;
    case CANCEL:
        qmp_run(qemu_proc_qmp(src), "migrate_cancel", NULL, &err);
        g_assert_no_error(err);
        qmp_wait_migration(qemu_proc_qmp(src), 60000, NULL, &err);
        g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
        g_test_message("QEMU: %s", err->message);
        g_assert_nonnull(strstr(err->message, "migration cancelled"));
        g_clear_error(&err);
        expect(tool("wait", arg, c.image, NULL), 1, "stream is incomplete");
        assert_log_has(src, "not committed (generation 2)");
        break;
    case KILL_QEMU:
        qemu_proc_kill(src);
        expect(tool("wait", arg, c.image, NULL), 1, "stream is incomplete");
        break;
    }
    expect(tool("wait", arg, c.image, NULL), 1, "generation 2 not committed");
    expect(tool("check", c.image, NULL, NULL), 0, "OK, generation 1");
    g_assert_cmpuint(restore_generation(&c), ==, 1);
    /* and generation 2 saved again commits */
    g_clear_pointer(&src, qemu_proc_free);
    save_generation(&c, 2);
    g_assert_cmpuint(restore_generation(&c), ==, 2);
    ctx_free(&c);
}

static void test_helper_killed(void)
{
    interrupted_save(KILL_HELPER);
}

static void test_cancelled(void)
{
    interrupted_save(CANCEL);
}

static void test_qemu_killed(void)
{
    interrupted_save(KILL_QEMU);
}

/* ---- a corrupt image ------------------------------------------------ */

static void test_corrupt_refused(void)
{
    Ctx c = { 0 };
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(JsonObject) args = json_object_new();
    g_autofree char *received = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *got = NULL;
    g_autofree char *status = NULL;
    CprImage h;
    char *why = NULL;
    gsize got_len;
    GError *err = NULL;
    guint8 byte;
    int fd;

    ctx_init(&c);
    save_generation(&c, 1);
    /* one flipped byte in the middle of the committed payload */
    g_assert_cmpint(cpr_image_open_read(c.image, &h, &why), ==, 0);
    cpr_image_close(&h);
    g_assert_cmpint(h.slots.newest, >=, 0);
    {
        const CprRecord *r = &h.slots.rec[h.slots.newest];
        off_t at = (off_t)(r->payload_off + r->stream_len / 2);

        fd = open(c.image, O_RDWR);
        g_assert_cmpint(pread(fd, &byte, 1, at), ==, 1);
        byte ^= 0x10;
        g_assert_cmpint(pwrite(fd, &byte, 1, at), ==, 1);
        close(fd);
    }
    expect(tool("check", c.image, NULL, NULL), 1, "checksum mismatch");

    /* tee records what QEMU receives */
    received = g_build_filename(c.dir, "received", NULL);
    uri = g_strdup_printf("exec:%s load %s | tee %s", CPR_PMEM, c.image,
                          received);
    dst = halt_vm_start(c.dir, c.dst_args, "dst", "defer", &err);
    g_assert_no_error(err);
    cpr_setup(qemu_proc_qmp(dst), &full_ram, &err);
    g_assert_no_error(err);
    json_object_set_string_member(args, "uri", uri);
    json_object_set_boolean_member(args, "exit-on-error", FALSE);
    qmp_run(qemu_proc_qmp(dst), "migrate-incoming", args, &err);
    g_assert_no_error(err);
    qmp_wait_migration(qemu_proc_qmp(dst), 30000, NULL, &err);
    g_assert_error(err, QMP_ERROR, QMP_ERROR_MIGRATION);
    g_test_message("destination: %s", err->message);
    g_assert_nonnull(strstr(err->message, "migration failed"));
    g_clear_error(&err);
    /* the guest never ran */
    status = qmp_query_status(qemu_proc_qmp(dst), &err);
    g_assert_no_error(err);
    g_assert_cmpstr(status, ==, "inmigrate");
    assert_log_has(dst, "payload checksum mismatch");
    assert_log_has(dst, "nothing of it was sent to QEMU");
    assert_log_has(dst, "Not a migration stream");
    /* QEMU received the four zero bytes and no byte of the image */
    g_assert_true(g_file_get_contents(received, &got, &got_len, NULL));
    g_assert_cmpmem(got, got_len, "\0\0\0\0", 4);
    g_clear_pointer(&dst, qemu_proc_free);
    ctx_free(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/exec-helper/guest-cycle", test_guest_cycle);
    g_test_add_func("/exec-helper/corrupt-refused", test_corrupt_refused);
    g_test_add_func("/exec-helper/binding", test_binding);
    g_test_add_func("/exec-helper/binding-override", test_binding_override);
    g_test_add_func("/exec-helper/disk", test_disk);
    g_test_add_func("/exec-helper/helper-killed", test_helper_killed);
    g_test_add_func("/exec-helper/cancelled", test_cancelled);
    g_test_add_func("/exec-helper/qemu-killed", test_qemu_killed);
    return g_test_run();
}
