/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The project installs like a package: `meson install --destdir` puts
 * transport-pmem.so where the patched QEMU looks for transports, the
 * tools into bin, and the ABI header with a pkg-config file into the
 * include and pkg-config directories; a third party builds a transport
 * (transport-filecopy.c, next to this file) against the installed header
 * and pkg-config file alone, and a patched QEMU saves and restores a VM
 * through it and through the installed transport-pmem.so, loaded from the
 * destdir's transport directory.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

#define RAM_SIZE "64M"
#define CMOS_FIRST 0x40

static char *destdir;

/* Run @argv (NULL-terminated) with @env added; stdout in *@out. */
static int run(const char *const *argv, const char *const *env, char **out)
{
    g_auto(GStrv) envp = g_get_environ();
    g_autofree char *err_text = NULL;
    g_autofree char *out_text = NULL;
    GError *err = NULL;
    int status;

    for (guint i = 0; env && env[i]; i += 2) {
        envp = g_environ_setenv(envp, env[i], env[i + 1], TRUE);
    }
    g_assert_true(g_spawn_sync(NULL, (char **)argv, envp, G_SPAWN_SEARCH_PATH,
                               NULL, NULL, &out_text, &err_text, &status,
                               &err));
    g_assert_no_error(err);
    {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv);

        g_test_message("%s -> %d\n%s%s", cmd, status, out_text, err_text);
    }
    if (out) {
        *out = g_strstrip(g_steal_pointer(&out_text));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* DESTDIR + an install directory (absolute, or relative to the prefix). */
static char *installed(const char *dir, const char *name)
{
    g_autofree char *abs = g_path_is_absolute(dir)
        ? g_strdup(dir) : g_build_filename(INSTALL_PREFIX, dir, NULL);

    return g_build_filename(destdir, abs, name, NULL);
}

static void assert_file(const char *path)
{
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        g_error("%s was not installed", path);
    }
}

static void test_install(void)
{
    const char *const argv[] = { MESON, "install", "-C", BUILD_ROOT,
                                 "--no-rebuild", "--quiet", "--destdir",
                                 destdir, NULL };

    g_assert_cmpint(run(argv, NULL, NULL), ==, 0);
}

static void test_layout(void)
{
    g_autofree char *tool = installed(INSTALL_BINDIR, "cpr-pmem");
    g_autofree char *update = installed(INSTALL_BINDIR, "cpr-host-update");
    g_autofree char *module = installed(INSTALL_TRANSPORTDIR,
                                        "transport-pmem.so");
    g_autofree char *header = installed(INSTALL_INCLUDEDIR,
                                        "qemu/transport-plugin.h");
    g_autofree char *pc = installed(INSTALL_LIBDIR,
                                    "pkgconfig/qemu-transport-plugin.pc");
    g_autofree char *doc = installed(INSTALL_DATADIR,
                                     "doc/qemu-cpr-pmem/exec-helper.md");
    g_autofree char *threats = installed(INSTALL_DATADIR,
                                         "doc/qemu-cpr-pmem/threat-model.md");
    const char *const help[] = { tool, "--help", NULL };
    g_autofree char *usage = NULL;

    assert_file(tool);
    assert_file(update);
    assert_file(module);
    assert_file(header);
    assert_file(pc);
    assert_file(doc);
    assert_file(threats);
    /* the installed tool runs on its own (no build tree behind it) */
    g_assert_cmpint(run(help, NULL, &usage), ==, 0);
    g_assert_nonnull(strstr(usage, "save [--id=ID] IMAGE"));
}

/* pkg-config sees only the destdir, as if it were the root. */
static const char *const *pc_env(void)
{
    static char *env[5];

    if (!env[0]) {
        env[0] = "PKG_CONFIG_LIBDIR";
        env[1] = installed(INSTALL_LIBDIR, "pkgconfig");
        env[2] = "PKG_CONFIG_SYSROOT_DIR";
        env[3] = g_strdup(destdir);
    }
    return (const char *const *)env;
}

/* The transport directory pkg-config names, inside the destdir. */
static char *pc_transportdir(void)
{
    const char *const argv[] = { "pkg-config", "--variable=transportdir",
                                 "qemu-transport-plugin", NULL };
    g_autofree char *dir = NULL;

    g_assert_cmpint(run(argv, pc_env(), &dir), ==, 0);
    g_assert_true(g_path_is_absolute(dir));
    /* pkgconf applies the sysroot to variables, pkg-config does not */
    if (g_str_has_prefix(dir, destdir)) {
        return g_steal_pointer(&dir);
    }
    return g_build_filename(destdir, dir, NULL);
}

static void test_pkg_config(void)
{
    const char *const cflags[] = { "pkg-config", "--cflags",
                                   "qemu-transport-plugin", NULL };
    const char *const libs[] = { "pkg-config", "--libs",
                                 "qemu-transport-plugin", NULL };
    g_autofree char *flags = NULL;
    g_autofree char *libflags = NULL;
    g_autofree char *inc = installed(INSTALL_INCLUDEDIR, NULL);
    g_autofree char *want = g_strconcat("-I", inc, NULL);
    g_autofree char *dir = pc_transportdir();
    g_autofree char *module_dir = installed(INSTALL_TRANSPORTDIR, NULL);
    g_autofree char *config = g_build_filename(QEMU_BUILD_DIR,
                                               "config-host.h", NULL);
    g_autofree char *text = NULL;

    g_assert_cmpint(run(cflags, pc_env(), &flags), ==, 0);
    g_assert_cmpstr(flags, ==, want);
    /* header only: nothing to link */
    g_assert_cmpint(run(libs, pc_env(), &libflags), ==, 0);
    g_assert_cmpstr(libflags, ==, "");
    g_assert_cmpstr(dir, ==, module_dir);

    /*
     * Where the patched QEMU looks: its module directory + "/transport".
     * Comparable when this build has QEMU's prefix (both default to
     * /usr/local).
     */
    if (g_file_get_contents(config, &text, NULL, NULL) &&
        strstr(text, "#define CONFIG_PREFIX \"" INSTALL_PREFIX "\"\n")) {
        static const char key[] = "#define CONFIG_QEMU_MODDIR \"";
        const char *m = strstr(text, key);
        g_autofree char *moddir = NULL;
        g_autofree char *want_dir = NULL;

        g_assert_nonnull(m);
        m += strlen(key);
        moddir = g_strndup(m, strcspn(m, "\""));
        want_dir = g_strconcat(moddir, "/transport", NULL);
        g_test_message("QEMU's transport directory: %s", want_dir);
        g_assert_cmpstr(dir + strlen(destdir), ==, want_dir);
    } else {
        g_test_message("QEMU was built for another prefix than %s: its "
                       "transport directory not compared", INSTALL_PREFIX);
    }
}

/* A third party's transport, from the installed header alone. */
static void test_build_third_party(void)
{
    g_autofree char *dir = pc_transportdir();
    g_autofree char *so = g_build_filename(dir, "transport-filecopy.so",
                                           NULL);
    g_autofree char *cflags = NULL;
    g_autofree char *syms = NULL;
    const char *const pc[] = { "pkg-config", "--cflags",
                               "qemu-transport-plugin", NULL };
    g_auto(GStrv) flags = NULL;
    g_autoptr(GPtrArray) cc = g_ptr_array_new();
    const char *const nm[] = { "nm", "-D", "--defined-only", so, NULL };

    g_assert_cmpint(run(pc, pc_env(), &cflags), ==, 0);
    flags = g_strsplit(cflags, " ", -1);
    g_ptr_array_add(cc, "cc");
    for (guint i = 0; flags[i]; i++) {
        if (*flags[i]) {
            g_ptr_array_add(cc, flags[i]);
        }
    }
    for (const char *const *a = (const char *const[]){
             "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-Wall",
             "-Wextra", "-Werror", "-fvisibility=hidden", "-shared", "-fPIC",
             "-o", NULL }; *a; a++) {
        g_ptr_array_add(cc, (gpointer)*a);
    }
    g_ptr_array_add(cc, so);
    g_ptr_array_add(cc, (gpointer)FILECOPY_SRC);
    g_ptr_array_add(cc, NULL);
    g_assert_cmpint(run((const char *const *)cc->pdata, NULL, NULL), ==, 0);
    /* exactly the two ABI symbols, through QEMU_TRANSPORT_EXPORT */
    g_assert_cmpint(run(nm, NULL, &syms), ==, 0);
    g_assert_nonnull(strstr(syms, " qemu_transport_plugin_init\n"));
    g_assert_true(g_str_has_suffix(syms, " qemu_transport_plugin_version"));
    g_assert_cmpuint(g_strv_length(g_strsplit(syms, "\n", -1)), ==, 2);
}

static guint32 word(guint i)
{
    return 0x5eed0000u ^ (i * 0x9e3779b9u);
}

static const guint64 addrs[] = { 0x1000, 0x200000, 0x1000000, 0x3fffffc };

static void write_state(Qtest *qt)
{
    GError *err = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(addrs); i++) {
        qtest_writel(qt, addrs[i], word(i), &err);
        g_assert_no_error(err);
    }
    for (guint i = 0; i < 8; i++) {
        halt_vm_cmos_write(qt, CMOS_FIRST + i, 0x11 * (i + 1));
    }
}

static void check_state(Qtest *qt)
{
    GError *err = NULL;
    guint32 v;

    for (guint i = 0; i < G_N_ELEMENTS(addrs); i++) {
        qtest_readl(qt, addrs[i], &v, &err);
        g_assert_no_error(err);
        g_assert_cmphex(v, ==, word(i));
    }
    for (guint i = 0; i < 8; i++) {
        g_assert_cmphex(halt_vm_cmos_read(qt, CMOS_FIRST + i), ==,
                        0x11 * (i + 1));
    }
}

/* Save and restore through @scheme:DIR/vm.state, transports from destdir. */
static char *cycle(const char *scheme)
{
    g_autofree char *transports = pc_transportdir();
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *state = g_build_filename(shm, "vm.state", NULL);
    g_autofree char *uri = g_strdup_printf("%s:%s", scheme, state);
    g_auto(GStrv) args = halt_vm_args(shm, "ram", RAM_SIZE);
    QemuProcOpts opts = {
        .binary = test_env_qemu(), .args = (const char *const *)args,
        .dir = shm, .name = "src", .qtest = TRUE,
    };
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    CprSample t;
    GError *err = NULL;

    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", transports, TRUE);
    g_test_message("qemu %s, uri %s, transports from %s", opts.binary, uri,
                   transports);
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    write_state(qemu_proc_qtest(src));
    dst = cpr_cycle(src, CPR_SETUP_SHARED, uri, "dst", &t, &err);
    g_assert_no_error(err);
    check_state(qemu_proc_qtest(dst));
    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    return g_steal_pointer(&shm);
}

static void test_third_party_cycle(void)
{
    g_autofree char *shm = cycle("filecopy");
    g_autofree char *state = g_build_filename(shm, "vm.state", NULL);
    g_autofree char *tmp = g_build_filename(shm, "vm.state.tmp", NULL);
    g_autofree char *head = NULL;
    gsize len;

    /* committed by rename: the stream is there, the temporary is not */
    g_assert_true(g_file_get_contents(state, &head, &len, NULL));
    g_assert_cmpuint(len, >, 8);
    g_assert_cmpmem(head, 4, "QEVM", 4);
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
    test_env_rmtree(shm);
}

static void test_installed_pmem_cycle(void)
{
    g_autofree char *shm = cycle("pmem");
    g_autofree char *state = g_build_filename(shm, "vm.state", NULL);
    g_autofree char *tool = installed(INSTALL_BINDIR, "cpr-pmem");
    const char *const check[] = { tool, "check", state, NULL };
    g_autofree char *out = NULL;

    g_assert_cmpint(run(check, NULL, &out), ==, 0);
    g_assert_nonnull(strstr(out, "OK, generation 1"));
    test_env_rmtree(shm);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    destdir = test_env_mkdtemp(TEST_BASE_DISK);
    /* in order: each step uses what the one before installed */
    g_test_add_func("/install/meson-install-destdir", test_install);
    g_test_add_func("/install/layout", test_layout);
    g_test_add_func("/install/pkg-config", test_pkg_config);
    g_test_add_func("/install/build-third-party-transport",
                    test_build_third_party);
    g_test_add_func("/install/third-party-save-restore",
                    test_third_party_cycle);
    g_test_add_func("/install/installed-pmem-save-restore",
                    test_installed_pmem_cycle);
    ret = g_test_run();
    if (ret == 0) {
        test_env_rmtree(destdir);
    }
    g_free(destdir);
    return ret;
}
