/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update without a reboot: three qtest VMs on a disk filesystem
 * (the build directory: images on tmpfs fail the reboot-survival check) saved
 * together.  --dry-run and a fake reboot command; failures before the
 * reboot (an image in a missing directory, an image path holding a
 * foreign file so that one save fails while the others complete, a
 * failing reboot command) must leave every VM running with its RAM and
 * device state, and no manifest or loadable image behind; and a restore
 * from the manifest after the VMs are gone, as after a reboot.
 *
 * $CPR_SCHEME says how the tool must save them: "pmem" with the patched
 * QEMU, "exec" with stock QEMU (no transport hook: exec:cpr-pmem save,
 * cpr-pmem wait, exec:cpr-pmem load, which the manifest's URIs show).
 */
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NVMS 3
#define RAM_ADDR 0x100000ULL
#define CMOS_REG 0x40

typedef struct {
    char *dir;
    char *marker;         /* the fake reboot command touches it */
    char *manifest;
    GStrv args[NVMS];
    QemuProc *vm[NVMS];
} Fixture;

static char *vm_name(int i)
{
    return g_strdup_printf("vm%d", i);
}

static guint32 ram_value(int i)
{
    return 0x5eed0000u + i * 0x1111u;
}

static void check_vm(Qtest *qt, int i)
{
    GError *err = NULL;
    guint32 v = 0;

    qtest_readl(qt, RAM_ADDR, &v, &err);
    g_assert_no_error(err);
    g_assert_cmphex(v, ==, ram_value(i));
    g_assert_cmphex(halt_vm_cmos_read(qt, CMOS_REG), ==, 0x30 + i);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    (void)data;
    f->dir = test_env_mkdtemp(TEST_BASE_DISK);
    f->marker = g_build_filename(f->dir, "rebooted", NULL);
    f->manifest = g_build_filename(f->dir, "cpr-host-update.json", NULL);
    {
        g_autofree char *tool = g_build_filename(f->dir, "tool", NULL);

        g_assert_cmpint(g_mkdir(tool, 0700), ==, 0);
    }
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *name = vm_name(i);
        g_autofree char *ram = g_strconcat(name, ".ram", NULL);
        g_autofree char *tool_qmp = g_strdup_printf(
            "unix:%s/tool/%s.qmp,server=on,wait=off", f->dir, name);
        g_auto(GStrv) base = halt_vm_args(f->dir, ram, "64M");
        GPtrArray *a = g_ptr_array_new();
        GError *err = NULL;

        for (int k = 0; base[k]; k++) {
            g_ptr_array_add(a, g_strdup(base[k]));
        }
        /* a second monitor for the tool; timestamps for its commit column */
        g_ptr_array_add(a, g_strdup("-qmp"));
        g_ptr_array_add(a, g_strdup(tool_qmp));
        g_ptr_array_add(a, g_strdup("-msg"));
        g_ptr_array_add(a, g_strdup("timestamp=on"));
        g_ptr_array_add(a, NULL);
        f->args[i] = (GStrv)g_ptr_array_free(a, FALSE);
        f->vm[i] = halt_vm_start(f->dir, f->args[i], name, NULL, &err);
        g_assert_no_error(err);
        qtest_writel(qemu_proc_qtest(f->vm[i]), RAM_ADDR, ram_value(i), &err);
        g_assert_no_error(err);
        halt_vm_cmos_write(qemu_proc_qtest(f->vm[i]), CMOS_REG, 0x30 + i);
    }
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    (void)data;
    for (int i = 0; i < NVMS; i++) {
        qemu_proc_free(f->vm[i]);
        g_strfreev(f->args[i]);
    }
    test_env_rmtree(f->dir);
    g_free(f->dir);
    g_free(f->marker);
    g_free(f->manifest);
}

/* How the tool must save this QEMU's VMs: "pmem" or "exec". */
static const char *scheme(void)
{
    const char *s = g_getenv("CPR_SCHEME");

    return s && g_str_equal(s, "exec") ? "exec" : "pmem";
}

static char *image(Fixture *f, int i)
{
    g_autofree char *name = vm_name(i);
    g_autofree char *file = g_strconcat(name, ".cpr", NULL);

    return g_build_filename(f->dir, file, NULL);
}

/* Run the tool; its exit status, stdout in *@out (g_free). */
static int run_tool(const char *const *args, char **out)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *sout = NULL, *serr = NULL;
    GError *err = NULL;
    int status;

    g_ptr_array_add(argv, CPR_HOST_UPDATE);
    for (int i = 0; args[i]; i++) {
        g_ptr_array_add(argv, (char *)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL,
                 NULL, &sout, &serr, &status, &err);
    g_assert_no_error(err);
    g_test_message("cpr-host-update %s:\n%s%s", args[0], sout, serr);
    g_assert_true(WIFEXITED(status));
    if (out) {
        *out = g_steal_pointer(&sout);
    }
    return WEXITSTATUS(status);
}

/* save with the given options, for every VM (tool/vmN.qmp[=image]). */
static int save(Fixture *f, const char *opt1, const char *opt2,
                const char *image1, char **out)
{
    g_autofree char *dir_opt = g_strdup_printf("--image-dir=%s", f->dir);
    g_autofree char *cmd = g_strdup_printf("--reboot-cmd=touch %s", f->marker);
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(a, g_strdup("save"));
    g_ptr_array_add(a, g_strdup(dir_opt));
    g_ptr_array_add(a, g_strdup(cmd));
    if (opt1) {
        g_ptr_array_add(a, g_strdup(opt1));
    }
    if (opt2) {
        g_ptr_array_add(a, g_strdup(opt2));
    }
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *name = vm_name(i);
        g_autofree char *sock = g_strdup_printf("%s/tool/%s.qmp", f->dir, name);

        g_ptr_array_add(a, i == 1 && image1
                           ? g_strconcat(sock, "=", image1, NULL)
                           : g_strdup(sock));
    }
    g_ptr_array_add(a, NULL);
    return run_tool((const char *const *)a->pdata, out);
}

/* cpr-pmem check: 0 loadable, 1 refused, 2 cannot open. */
static int check_image(const char *path)
{
    const char *argv[] = { CPR_PMEM, "check", path, NULL };
    int status;

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL |
                 G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                 &status, NULL);
    return WEXITSTATUS(status);
}

/* Every VM running, with its RAM and CMOS, and nothing left to restore. */
static void assert_all_running(Fixture *f)
{
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *status = NULL;
        GError *err = NULL;

        status = qmp_query_status(qemu_proc_qmp(f->vm[i]), &err);
        g_assert_no_error(err);
        g_assert_cmpstr(status, ==, "running");
        check_vm(qemu_proc_qtest(f->vm[i]), i);
    }
    g_assert_false(g_file_test(f->marker, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(f->manifest, G_FILE_TEST_EXISTS));
}

static void test_dry_run(Fixture *f, gconstpointer data)
{
    g_autofree char *out = NULL, *text = NULL;
    g_autofree char *dry = g_strconcat(f->manifest, ".dry-run", NULL);
    g_autofree char *tmp = g_strconcat(dry, ".tmp", NULL);
    g_autofree char *victim = g_build_filename(f->dir, "victim", NULL);
    struct stat st;

    (void)data;
    /* a symlink where the old tool put its temporary file */
    g_assert_true(g_file_set_contents(victim, "victim", -1, NULL));
    g_assert_cmpint(symlink(victim, tmp), ==, 0);
    g_assert_cmpint(save(f, "--dry-run", NULL, NULL, &out), ==, 0);
    g_assert_true(g_file_get_contents(victim, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, "victim");
    /* it holds the VMs' environments: a regular file, 0600 */
    g_assert_cmpint(lstat(dry, &st), ==, 0);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_nonnull(strstr(out, "pre-stop ms"));
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *name = vm_name(i);
        g_autofree char *img = image(f, i);

        g_assert_nonnull(strstr(out, name));
        /* saved, checked, then invalidated: a later boot must not load it */
        g_assert_cmpint(check_image(img), ==, 1);
    }
    g_assert_true(g_file_test(dry, G_FILE_TEST_EXISTS));
    assert_all_running(f);
}

static void test_missing_dir(Fixture *f, gconstpointer data)
{
    g_autofree char *bad = g_build_filename(f->dir, "no-such-dir", "vm1.cpr",
                                            NULL);

    (void)data;
    g_assert_cmpint(save(f, NULL, NULL, bad, NULL), ==, 1);
    assert_all_running(f);
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *img = image(f, i);

        /* refused before any VM was touched */
        g_assert_false(g_file_test(img, G_FILE_TEST_EXISTS));
    }
}

/* One save fails inside QEMU while the others complete: all resume. */
static void test_failed_save(Fixture *f, gconstpointer data)
{
    g_autofree char *foreign = g_build_filename(f->dir, "foreign.cpr", NULL);
    GError *err = NULL;

    (void)data;
    g_file_set_contents(foreign, "not an image\n", -1, &err);
    g_assert_no_error(err);
    g_assert_cmpint(save(f, NULL, NULL, foreign, NULL), ==, 1);
    assert_all_running(f);
    for (int i = 0; i < NVMS; i += 2) {
        g_autofree char *img = image(f, i);

        g_assert_cmpint(check_image(img), ==, 1);
    }
    /* and they go on working */
    for (int i = 0; i < NVMS; i++) {
        qtest_writel(qemu_proc_qtest(f->vm[i]), RAM_ADDR + 4, 7, &err);
        g_assert_no_error(err);
    }
}

static void test_reboot_cmd_fails(Fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_cmpint(save(f, "--reboot-cmd=false", NULL, NULL, NULL), ==, 1);
    assert_all_running(f);
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *img = image(f, i);

        g_assert_cmpint(check_image(img), ==, 1);
    }
}

/* The default reboot command needs a kernel loaded by kexec -l (and a
 * kernel that can kexec at all). */
static void test_no_kexec_kernel(Fixture *f, gconstpointer data)
{
    g_autofree char *loaded = NULL;

    (void)data;
    if (g_file_get_contents("/sys/kernel/kexec_loaded", &loaded, NULL, NULL) &&
        loaded[0] == '1') {
        g_test_skip("a kexec kernel is loaded on this machine");
        return;
    }
    g_assert_cmpint(save(f, "--reboot-cmd=kexec -e", NULL, NULL, NULL), ==, 1);
    assert_all_running(f);
}

static void test_restore(Fixture *f, gconstpointer data)
{
    g_autofree char *mopt = g_strdup_printf("--manifest=%s", f->manifest);
    g_autofree char *done = g_strconcat(f->manifest, ".restored", NULL);
    const char *restore[] = { "restore", mopt, NULL };
    GSocket *listen[NVMS];
    g_autofree char *out = NULL;
    GError *err = NULL;
    struct stat st;

    (void)data;
    g_assert_cmpint(save(f, NULL, NULL, NULL, NULL), ==, 0);
    g_assert_true(g_file_test(f->marker, G_FILE_TEST_EXISTS));
    g_assert_cmpint(lstat(f->manifest, &st), ==, 0);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    {
        g_autofree char *text = NULL;
        g_autofree char *want = g_strdup_printf("\"%s:", scheme());
        const char *p;
        int n = 0;

        g_assert_true(g_file_get_contents(f->manifest, &text, NULL, NULL));
        for (p = text; (p = strstr(p, want)); p++) {
            n++;
        }
        /* every VM restores through the scheme it was saved with */
        g_assert_cmpint(n, ==, NVMS);
        if (g_str_equal(scheme(), "exec")) {
            g_assert_nonnull(strstr(text, " load "));
        }
    }
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *img = image(f, i);
        /* paused for the reboot (the run state follows "completed") */
        qmp_wait_status(qemu_proc_qmp(f->vm[i]), "postmigrate", 10000, &err);
        g_assert_no_error(err);
        g_assert_cmpint(check_image(img), ==, 0);
    }
    /* The reboot: every QEMU gone.  The restored ones connect to our qtest
     * sockets, as their command lines say. */
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *name = vm_name(i);
        g_autofree char *qt = g_strdup_printf("%s/%s.qtest", f->dir, name);

        g_clear_pointer(&f->vm[i], qemu_proc_free);
        g_unlink(qt);
        listen[i] = qtest_listen(qt, &err);
        g_assert_no_error(err);
    }
    g_assert_cmpint(run_tool(restore, &out), ==, 0);
    g_assert_nonnull(strstr(out, "qemu start ms"));
    /* durations on the monotonic clock: none negative */
    g_assert_false(g_regex_match_simple(" -[0-9]", out, 0, 0));
    g_assert_false(g_file_test(f->manifest, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(done, G_FILE_TEST_EXISTS));
    for (int i = 0; i < NVMS; i++) {
        g_autofree char *name = vm_name(i);
        g_autofree char *qmp_path = g_strdup_printf("%s/%s.qmp", f->dir, name);
        g_autoptr(Qtest) qt = qtest_accept(listen[i], 30000, &err);
        g_autoptr(Qmp) qmp = NULL;
        g_autofree char *status = NULL;

        g_assert_no_error(err);
        check_vm(qt, i);
        qmp = qmp_connect(qmp_path, 30000, &err);
        g_assert_no_error(err);
        status = qmp_query_status(qmp, &err);
        g_assert_cmpstr(status, ==, "running");
        qmp_quit(qmp, &err);
        g_assert_no_error(err);
        g_object_unref(listen[i]);
    }
    /* A second restore finds nothing to do. */
    g_assert_cmpint(run_tool(restore, NULL), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/host-update/dry-run", Fixture, NULL, fixture_setup,
               test_dry_run, fixture_teardown);
    g_test_add("/host-update/missing-dir", Fixture, NULL, fixture_setup,
               test_missing_dir, fixture_teardown);
    g_test_add("/host-update/failed-save", Fixture, NULL, fixture_setup,
               test_failed_save, fixture_teardown);
    g_test_add("/host-update/reboot-cmd-fails", Fixture, NULL, fixture_setup,
               test_reboot_cmd_fails, fixture_teardown);
    g_test_add("/host-update/no-kexec-kernel", Fixture, NULL, fixture_setup,
               test_no_kexec_kernel, fixture_teardown);
    g_test_add("/host-update/restore", Fixture, NULL, fixture_setup,
               test_restore, fixture_teardown);
    return g_test_run();
}
