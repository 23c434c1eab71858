/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bad input through the patched QEMU and pmem:, end to end.  Each case
 * must fail with a message naming the file and the problem, the source VM
 * must be running again afterwards, and the last good image must still
 * restore.  Needs root: it mounts tiny tmpfs instances in a private mount
 * namespace (a read-only one, and one too small for a full-RAM save).
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define RAM_SIZE "64M"
#define CMOS_BYTE 0x40

typedef struct {
    char *shm;          /* RAM file, firmware, QEMU sockets */
    char *good;         /* pmem:good image, committed once */
    GStrv args;
    QemuProcOpts opts;
    QemuProc *src;
} Fixture;

static void mount_tmpfs(const char *dir, const char *opts)
{
    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    if (mount("none", dir, "tmpfs", 0, opts) != 0) {
        g_error("mount tmpfs (%s) on %s: %s", opts, dir, g_strerror(errno));
    }
}

static void fixture_start(Fixture *f, const char *name)
{
    GError *err = NULL;
    Qmp *qmp;

    f->opts.name = name;
    f->src = qemu_proc_start(&f->opts, &err);
    g_assert_no_error(err);
    qmp = qemu_proc_qmp(f->src);
    qmp_set_capability(qmp, "x-ignore-shared", TRUE, &err);
    g_assert_no_error(err);
    qmp_set_parameter(qmp, "mode", "cpr-reboot", &err);
    g_assert_no_error(err);
}

static void fixture_init(Fixture *f)
{
    f->shm = test_env_mkdtemp(TEST_BASE_SHM);
    f->good = g_build_filename(f->shm, "good.cpr", NULL);
    f->args = halt_vm_args(f->shm, "ram", RAM_SIZE);
    f->opts = (QemuProcOpts) {
        .binary = test_env_qemu(), .args = (const char *const *)f->args,
        .dir = f->shm, .qtest = TRUE,
    };
    fixture_start(f, "src");
}

static void fixture_free(Fixture *f)
{
    g_clear_pointer(&f->src, qemu_proc_free);
    test_env_rmtree(f->shm);
    g_strfreev(f->args);
    g_free(f->good);
    g_free(f->shm);
}

/* Save to pmem:@path; returns the error, or NULL if it completed. */
static GError *try_save(Fixture *f, const char *path)
{
    g_autofree char *uri = g_strconcat("pmem:", path, NULL);
    Qmp *qmp = qemu_proc_qmp(f->src);
    GError *err = NULL;

    if (qmp_migrate(qmp, uri, &err)) {
        qmp_wait_migration(qmp, 60000, NULL, &err);
    }
    return err;
}

/* The failed save left the VM running; a later save must still work. */
static void assert_running(Fixture *f)
{
    GError *err = NULL;

    qmp_wait_status(qemu_proc_qmp(f->src), "running", 10000, &err);
    g_assert_no_error(err);
}

static void assert_save_fails(Fixture *f, const char *path,
                              const char *want1, const char *want2)
{
    g_autoptr(GError) err = try_save(f, path);

    g_assert_nonnull(err);
    g_test_message("%s: %s", path, err->message);
    g_assert_nonnull(strstr(err->message, want1));
    g_assert_nonnull(strstr(err->message, want2));
    assert_running(f);
}

/*
 * A new QEMU restores pmem:@path and shows the CMOS byte of that save.
 * The source ran on after its failed saves, so its RAM is newer than the
 * last good image, which the RAM binding refuses (rightly, and
 * test-binding shows it): the image itself is what is checked here.
 */
static void assert_restores(Fixture *f, const char *path, guint8 cmos)
{
    g_autofree char *uri = g_strconcat("pmem:", path, NULL);
    g_autoptr(QemuProc) dst = NULL;
    GError *err = NULL;
    CprSample t;

    f->opts.name = "dst";
    g_setenv("CPR_PMEM_ALLOW", "ram", TRUE);
    dst = cpr_restore(&f->opts, CPR_SETUP_SHARED, uri, &t, &err);
    g_unsetenv("CPR_PMEM_ALLOW");
    g_assert_no_error(err);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, cmos);
}

static void test_save_refusals(void)
{
    g_autofree char *ro = NULL, *tiny = NULL, *small = NULL;
    g_autofree char *in_ro = NULL, *in_tiny = NULL, *in_small = NULL;
    g_autofree char *junk = NULL, *junk_after = NULL;
    Fixture f = { 0 };
    GError *err = NULL;

    g_assert_cmpint(unshare(CLONE_NEWNS), ==, 0);
    g_assert_cmpint(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), ==, 0);
    fixture_init(&f);
    ro = g_build_filename(f.shm, "ro", NULL);
    tiny = g_build_filename(f.shm, "tiny", NULL);
    small = g_build_filename(f.shm, "small", NULL);
    mount_tmpfs(ro, "ro,size=1m");
    mount_tmpfs(tiny, "size=64k");      /* not even a device-state stream */
    mount_tmpfs(small, "size=12m");     /* device state, not all of RAM */

    halt_vm_cmos_write(qemu_proc_qtest(f.src), CMOS_BYTE, 0x11);
    err = try_save(&f, f.good);
    g_assert_no_error(err);
    /* A completed save leaves the VM stopped (postmigrate): go on running. */
    qmp_run(qemu_proc_qmp(f.src), "cont", NULL, &err);
    g_assert_no_error(err);
    assert_running(&f);

    assert_save_fails(&f, "/nonexistent-dir/vm.cpr", "/nonexistent-dir/vm.cpr",
                      "No such file or directory");
    in_ro = g_build_filename(ro, "vm.cpr", NULL);
    assert_save_fails(&f, in_ro, in_ro, "Read-only file system");
    in_tiny = g_build_filename(tiny, "vm.cpr", NULL);
    assert_save_fails(&f, in_tiny, in_tiny, "No space left on device");

    junk = g_build_filename(f.shm, "junk", NULL);
    g_file_set_contents(junk, "not an image", -1, &err);
    g_assert_no_error(err);
    assert_save_fails(&f, junk, junk, "not a pmem CPR image");
    g_file_get_contents(junk, &junk_after, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(junk_after, ==, "not an image");

    /* An unknown scheme never reaches a transport. */
    g_assert_false(qmp_migrate(qemu_proc_qmp(f.src), "nosuch:/tmp/vm", &err));
    g_test_message("nosuch: %s", err->message);
    g_assert_nonnull(strstr(err->message, "nosuch"));
    g_clear_error(&err);
    assert_running(&f);

    /* A save that runs out of space halfway: full RAM, not x-ignore-shared. */
    qmp_set_capability(qemu_proc_qmp(f.src), "x-ignore-shared", FALSE, &err);
    g_assert_no_error(err);
    halt_vm_cmos_write(qemu_proc_qtest(f.src), CMOS_BYTE, 0x22);
    qtest_memset(qemu_proc_qtest(f.src), 1 << 20, 16 << 20, 0x5a, &err);
    g_assert_no_error(err);
    in_small = g_build_filename(small, "vm.cpr", NULL);
    assert_save_fails(&f, in_small, in_small, "No space left on device");

    /* None of it touched the last good image. */
    g_clear_pointer(&f.src, qemu_proc_free);
    assert_restores(&f, f.good, 0x11);
    umount(ro);
    umount(tiny);
    umount(small);
    fixture_free(&f);
}

static void copy_truncated(const char *from, const char *to, gsize len)
{
    g_autofree char *data = NULL;
    GError *err = NULL;
    gsize size;

    g_file_get_contents(from, &data, &size, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(len, <, size);
    g_file_set_contents(to, data, len, &err);
    g_assert_no_error(err);
}

static void test_restore_refusals(void)
{
    g_autofree char *junk = NULL, *short_hdr = NULL, *short_payload = NULL;
    g_autofree char *good_uri = NULL;
    g_autoptr(QemuProc) dst = NULL;
    const char *bad[3];
    Fixture f = { 0 };
    GError *err = NULL;
    Qmp *qmp;

    fixture_init(&f);
    halt_vm_cmos_write(qemu_proc_qtest(f.src), CMOS_BYTE, 0x33);
    err = try_save(&f, f.good);
    g_assert_no_error(err);
    g_clear_pointer(&f.src, qemu_proc_free);

    junk = g_build_filename(f.shm, "junk", NULL);
    g_file_set_contents(junk, "not an image", -1, &err);
    g_assert_no_error(err);
    short_hdr = g_build_filename(f.shm, "short-header.cpr", NULL);
    copy_truncated(f.good, short_hdr, 6000);
    short_payload = g_build_filename(f.shm, "short-payload.cpr", NULL);
    copy_truncated(f.good, short_payload, (2 << 20) + 4096);
    bad[0] = junk;
    bad[1] = short_hdr;
    bad[2] = short_payload;

    /* Every refusal leaves the destination waiting for a good image. */
    dst = halt_vm_start(f.shm, f.args, "dst", "defer", &err);
    g_assert_no_error(err);
    qmp = qemu_proc_qmp(dst);
    qmp_set_capability(qmp, "x-ignore-shared", TRUE, &err);
    g_assert_no_error(err);
    qmp_set_parameter(qmp, "mode", "cpr-reboot", &err);
    g_assert_no_error(err);
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *uri = g_strconcat("pmem:", bad[i], NULL);

        g_assert_false(qmp_migrate_incoming(qmp, uri, &err));
        g_test_message("%s: %s", bad[i], err->message);
        g_assert_nonnull(strstr(err->message, bad[i]));
        g_clear_error(&err);
    }
    good_uri = g_strconcat("pmem:", f.good, NULL);
    qmp_migrate_incoming(qmp, good_uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qmp, "running", 30000, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(halt_vm_cmos_read(qemu_proc_qtest(dst), CMOS_BYTE), ==, 0x33);
    g_clear_pointer(&dst, qemu_proc_free);
    fixture_free(&f);
}

/* A plugin built for another ABI version is refused; the VM runs on. */
static void test_abi_mismatch(void)
{
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *copy = NULL;
    g_auto(GStrv) args = halt_vm_args(dir, "ram", RAM_SIZE);
    g_autoptr(QemuProc) vm = NULL;
    GError *err = NULL;

    vm = halt_vm_start_with_plugin(dir, args, "src", NULL, BADABI_SO, &copy,
                                   &err);
    g_assert_no_error(err);

    g_assert_false(qmp_migrate(qemu_proc_qmp(vm), "badabi:/tmp/vm", &err));
    g_test_message("badabi: %s", err->message);
    g_assert_nonnull(strstr(err->message, "transport ABI version 99"));
    g_clear_error(&err);
    qmp_wait_status(qemu_proc_qmp(vm), "running", 10000, &err);
    g_assert_no_error(err);
    g_clear_pointer(&vm, qemu_proc_free);
    test_env_rmtree(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bad-input/save-refusals", test_save_refusals);
    g_test_add_func("/bad-input/restore-refusals", test_restore_refusals);
    g_test_add_func("/bad-input/abi-mismatch", test_abi_mismatch);
    return g_test_run();
}
