/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The real flow (issue 10): an L1 host VM under TCG (Debian's cloud kernel,
 * an emulated NVDIMM backed by a file here, fs-dax at /mnt/pmem) runs the
 * patched QEMU as L2 with guest RAM and images on the DAX mount, saves it
 * with cpr-host-update and goes down by kexec, by a full reboot and by a
 * crash (its QEMU SIGKILLed); after each, cpr-host-update restores L2 and
 * its RAM patterns and RTC CMOS bytes are checked over qtest.  Inside L1
 * libpmem must take /mnt/pmem for pmem unforced, and the unit and crash
 * suites run there.
 *
 * L1 (scripts/build-l1-image.sh, tests/reboot/l1-init.sh) serves shell
 * commands on its second serial port; reboot-l2 drives L2 inside L1.
 * Every line L1 sends is logged with the time it arrived.
 */
#include "line-socket.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#define NVDIMM_SIZE "2G"
#define BOOT_TIMEOUT_S 300
#define CMD_TIMEOUT_S 900

typedef struct {
    char *dir;
    char *kernel, *initrd, *disk;
    char *nvdimm;
    char *agent_path, *console;
    GSubprocess *proc;
    LineSocket *agent;
    int boots;
} L1;

static L1 l1;
static GString *summary;
static gint64 suite_t0;

static double secs(gint64 from, gint64 to)
{
    return (to - from) / 1e6;
}

static void phase(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void phase(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_test_message("PHASE %s", s);
    g_string_append_printf(summary, "  %s\n", s);
}

static void die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static const char *l1_qemu(void)
{
    const char *q = g_getenv("CPR_L1_QEMU");

    return q && *q ? q : "/usr/bin/qemu-system-x86_64";
}

/* Start L1's QEMU and connect to the agent port; returns the spawn time. */
static gint64 l1_start(void)
{
    g_autofree char *nv = g_strdup_printf(
        "memory-backend-file,id=nv0,share=on,mem-path=%s,size=" NVDIMM_SIZE,
        l1.nvdimm);
    g_autofree char *drive = g_strdup_printf(
        "file=%s,format=raw,if=virtio,readonly=on", l1.disk);
    g_autofree char *serial0 = g_strdup_printf("file:%s", l1.console);
    g_autofree char *agent = g_strdup_printf(
        "socket,id=agent,path=%s,server=on,wait=off", l1.agent_path);
    g_autofree char *log = g_strdup_printf("%s/l1-qemu-%d.log", l1.dir, l1.boots);
    const char *argv[] = {
        l1_qemu(), "-accel", "tcg", "-machine", "pc,nvdimm=on", "-smp", "2",
        "-m", "1G,slots=2,maxmem=4G", "-object", nv,
        "-device", "nvdimm,id=nvdimm0,memdev=nv0",
        "-kernel", l1.kernel, "-initrd", l1.initrd,
        "-append", "console=ttyS0 panic=-1 quiet",
        "-drive", drive, "-display", "none", "-nodefaults", "-no-user-config",
        "-serial", serial0, "-chardev", agent, "-serial", "chardev:agent",
        NULL,
    };
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GSocket) sock = NULL;
    GError *err = NULL;
    gint64 t;

    g_subprocess_launcher_set_stdout_file_path(launcher, log);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
    g_unlink(l1.agent_path);
    t = g_get_monotonic_time();
    l1.proc = g_subprocess_launcher_spawnv(launcher, argv, &err);
    g_assert_no_error(err);
    l1.boots++;
    sock = unix_socket_connect(l1.agent_path, deadline_after_ms(30000), &err);
    g_assert_no_error(err);
    l1.agent = line_socket_new(sock);
    return t;
}

static void l1_kill(void)
{
    if (l1.proc) {
        g_subprocess_send_signal(l1.proc, SIGKILL);
        g_subprocess_wait(l1.proc, NULL, NULL);
        g_clear_object(&l1.proc);
    }
    g_clear_pointer(&l1.agent, line_socket_free);
}

static void show_console_tail(void)
{
    g_autofree char *text = NULL;
    gsize len;

    if (g_file_get_contents(l1.console, &text, &len, NULL)) {
        g_test_message("--- %s (tail) ---\n%s", l1.console,
                       text + (len > 3000 ? len - 3000 : 0));
    }
}

/*
 * Next line from L1, logged; *@at gets its arrival time.  A timeout or a
 * lost connection fails the test with the console's tail.
 */
static char *l1_line(guint timeout_s, gint64 *at)
{
    GError *err = NULL;
    char *line = line_socket_read(l1.agent, deadline_after_ms(timeout_s * 1000),
                                  &err);

    if (!line) {
        show_console_tail();
        g_error("L1 agent: %s", err->message);
    }
    if (at) {
        *at = g_get_monotonic_time();
    }
    g_test_message("L1 %7.2f | %s", secs(suite_t0, g_get_monotonic_time()),
                   line);
    if (g_str_has_prefix(line, "@@fail")) {
        show_console_tail();
        g_error("L1: %s", line);
    }
    return line;
}

/* Read until a line starting with @prefix (lines before it go to *@out). */
static char *l1_wait(const char *prefix, guint timeout_s, gint64 *at,
                     GString *out)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

    for (;;) {
        gint64 left = (deadline - g_get_monotonic_time()) / G_USEC_PER_SEC;
        char *line = l1_line(MAX(left, 1), at);

        if (g_str_has_prefix(line, prefix)) {
            return line;
        }
        if (out) {
            g_string_append_printf(out, "%s\n", line);
        }
        g_free(line);
    }
}

static void l1_send(const char *cmd)
{
    g_autofree char *line = g_strconcat(cmd, "\n", NULL);
    GError *err = NULL;

    g_test_message("L1 %7.2f < %s", secs(suite_t0, g_get_monotonic_time()), cmd);
    line_socket_send(l1.agent, line, strlen(line), deadline_after_ms(10000), &err);
    g_assert_no_error(err);
}

/* Run @cmd in L1; its exit status, output in *@out (if given). */
static int l1_run(const char *cmd, GString *out)
{
    g_autofree char *rc = NULL;

    l1_send(cmd);
    rc = l1_wait("@@rc ", CMD_TIMEOUT_S, NULL, out);
    return atoi(rc + 5);
}

static void l1_run_ok(const char *cmd, GString *out)
{
    g_assert_cmpint(l1_run(cmd, out), ==, 0);
}

/* Boot: from @start to "@@init" (kernel) and "@@ready" (pmem mounted). */
static void l1_wait_boot(const char *what, gint64 start)
{
    g_autofree char *init = NULL, *ready = NULL;
    gint64 t_init, t_ready;

    init = l1_wait("@@init", BOOT_TIMEOUT_S, &t_init, NULL);
    ready = l1_wait("@@ready", BOOT_TIMEOUT_S, &t_ready, NULL);
    g_assert_nonnull(strstr(ready, "dax=always"));
    phase("%-28s %6.2f s to userspace, %6.2f s more to /mnt/pmem mounted%s",
          what, secs(start, t_init), secs(t_init, t_ready),
          strstr(ready, "made-fs-in") ? " (first boot: namespace + mkfs)" : "");
}

static char *build_path(const char *rel)
{
    return g_build_filename(CPR_BUILD_ROOT, rel, NULL);
}

static char *driver_cmd(const char *sub, int round, const char *extra)
{
    g_autofree char *drv = build_path("tests/reboot/reboot-l2");
    g_autofree char *tool = build_path("backend/tool/host-update/cpr-host-update");
    g_autofree char *plugins = build_path("backend");

    return g_strdup_printf("env -u PMEM_IS_PMEM_FORCE QEMU_TRANSPORT_PLUGIN_DIR=%s "
                           "%s --qemu=%s --tool=%s --round=%d %s%s",
                           plugins, drv, g_getenv("CPR_QEMU"), tool, round,
                           sub, extra ? extra : "");
}

static void test_boot(void)
{
    g_autofree char *script = g_getenv("CPR_BUILD_L1_SCRIPT")
        ? g_strdup(g_getenv("CPR_BUILD_L1_SCRIPT")) : NULL;
    const char *argv[] = { script, g_getenv("CPR_QEMU"), CPR_BUILD_ROOT, NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) paths = NULL;
    GError *err = NULL;
    int status;
    gint64 t0 = g_get_monotonic_time(), t;

    g_assert_nonnull(script);
    g_assert_nonnull(argv[1]);
    /* stderr passes through: a cold build says what it does */
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                 NULL, &status, &err);
    g_assert_no_error(err);
    g_spawn_check_wait_status(status, &err);
    g_assert_no_error(err);
    paths = g_strsplit(g_strchomp(out), "\n", -1);
    g_assert_cmpuint(g_strv_length(paths), ==, 3);
    l1.kernel = g_strdup(paths[0]);
    l1.initrd = g_strdup(paths[1]);
    l1.disk = g_strdup(paths[2]);
    phase("%-28s %6.2f s (%s)", "L1 image (cached or built)",
          secs(t0, g_get_monotonic_time()), l1.disk);

    l1.dir = test_env_mkdtemp(TEST_BASE_DISK);
    l1.nvdimm = g_build_filename(l1.dir, "nvdimm.img", NULL);
    l1.agent_path = g_build_filename(l1.dir, "agent.sock", NULL);
    l1.console = g_build_filename(l1.dir, "console.log", NULL);
    g_test_message("L1 work directory %s, QEMU %s", l1.dir, l1_qemu());
    {
        const char *trunc[] = { "truncate", "-s", NVDIMM_SIZE, l1.nvdimm, NULL };

        g_spawn_sync(NULL, (char **)trunc, NULL, G_SPAWN_SEARCH_PATH, NULL,
                     NULL, NULL, NULL, &status, &err);
        g_assert_no_error(err);
        g_assert_cmpint(status, ==, 0);
    }
    t = l1_start();
    l1_wait_boot("L1 first boot", t);
}

static void test_is_pmem(void)
{
    g_autofree char *probe = build_path("tests/reboot/pmem-probe");
    g_autofree char *cmd = g_strdup_printf(
        "env -u PMEM_IS_PMEM_FORCE %s /mnt/pmem && grep ' /mnt/pmem ' /proc/mounts",
        probe);
    g_autoptr(GString) out = g_string_new(NULL);

    l1_run_ok(cmd, out);
    g_assert_nonnull(strstr(out->str, "is_pmem=1 /mnt/pmem"));
    g_assert_nonnull(strstr(out->str, "dax=always"));
    phase("libpmem on /mnt/pmem without PMEM_IS_PMEM_FORCE: is_pmem=1");
}

/*
 * The unit suite's file-based tests on the DAX mount (CPR_EXPECT_PMEM=1:
 * the transport itself must take the media for pmem), and the crash
 * suite's pmem mode, which runs in the background meanwhile.  Not
 * test-growth: it makes its own small tmpfs and loop filesystems.
 */
static void test_suites_on_dax(void)
{
    static const char *const units[] = {
        "format", "roundtrip", "refusals", "create", NULL,
    };
    g_autofree char *crash = build_path("tests/crash/test-crash");
    g_autofree char *bg = g_strdup_printf(
        "mkdir -p /mnt/pmem/crash && (env -u PMEM_IS_PMEM_FORCE "
        "CPR_TEST_DIR=/mnt/pmem/crash %s pmem >/tmp/crash.log 2>&1; "
        "echo \"exit=$?\" >>/tmp/crash.log; rm -rf /mnt/pmem/crash) "
        ">/dev/null 2>&1 &", crash);
    gint64 t0 = g_get_monotonic_time();

    l1_run_ok(bg, NULL);
    for (int i = 0; units[i]; i++) {
        g_autofree char *exe = g_strdup_printf("tests/unit/test-%s", units[i]);
        g_autofree char *path = build_path(exe);
        g_autofree char *cmd = g_strdup_printf(
            "mkdir -p /mnt/pmem/unit && cd /mnt/pmem/unit && "
            "env -u PMEM_IS_PMEM_FORCE CPR_TEST_DIR=/mnt/pmem/unit "
            "CPR_EXPECT_PMEM=1 %s --tap; rc=$?; cd /; rm -rf /mnt/pmem/unit; "
            "exit $rc", path);
        gint64 t = g_get_monotonic_time();

        l1_run_ok(cmd, NULL);
        phase("unit %-23s %6.2f s on fs-dax", units[i],
              secs(t, g_get_monotonic_time()));
    }
    l1_run_ok("while ! grep -q '^exit=' /tmp/crash.log; do sleep 1; done; "
              "cat /tmp/crash.log; exit $(sed -n 's/^exit=//p' /tmp/crash.log)",
              NULL);
    phase("%-28s %6.2f s (unit and crash suites on fs-dax)", "suites on DAX",
          secs(t0, g_get_monotonic_time()));
}

typedef enum { DOWN_KEXEC, DOWN_REBOOT, DOWN_CRASH } Down;

/*
 * One round: L2 saved by cpr-host-update, L1 down the way @how says and
 * back, L2 restored and checked.
 */
static void round_trip(Down how, int round)
{
    static const char *const names[] = { "kexec", "reboot", "crash" };
    static const char *const cmds[] = {
        NULL,                        /* the tool's default: kexec -e */
        " --reboot-cmd='reboot -f'",
        /* the host kills L1 when the tool runs this */
        " --reboot-cmd='sleep 3600'",
    };
    g_autofree char *save = driver_cmd("save", round, cmds[how]);
    g_autofree char *restore = driver_cmd("restore", round, NULL);
    g_autofree char *what = g_strdup_printf("%s: down to userspace", names[how]);
    g_autoptr(GString) out = g_string_new(NULL);
    gint64 t_save, t_down, t_up, t_restored;
    char *line;

    if (how == DOWN_KEXEC) {
        l1_run_ok("kexec -l /boot/vmlinuz --initrd=/boot/initrd.img --reuse-cmdline",
                  NULL);
    }
    t_save = g_get_monotonic_time();
    l1_send(save);
    /* The tool says so just before it runs the reboot command. */
    for (;;) {
        line = l1_line(CMD_TIMEOUT_S, &t_down);
        if (strstr(line, "cpr-host-update: manifest ") && strstr(line, "running:")) {
            break;
        }
        if (g_str_has_prefix(line, "@@rc ")) {
            g_error("the save ended before the reboot: %s", line);
        }
        g_free(line);
    }
    g_free(line);
    phase("%s: %-20s %6.2f s (L2 start, patterns, save, check, manifest)",
          names[how], "save", secs(t_save, t_down));
    if (how == DOWN_CRASH) {
        l1_kill();
        t_down = l1_start();
    }
    l1_wait_boot(what, t_down);
    t_up = g_get_monotonic_time();
    l1_run_ok(restore, out);
    t_restored = g_get_monotonic_time();
    for (int vm = 0; vm < 2; vm++) {
        g_autofree char *want = g_strdup_printf(
            "@@verified vm%d round=%d ram=ok cmos=ok", vm, round);

        g_assert_nonnull(strstr(out->str, want));
    }
    phase("%s: %-20s %6.2f s (cpr-host-update restore, 2 VMs, patterns "
          "verified)", names[how], "restore", secs(t_up, t_restored));
}

static void test_kexec(void)
{
    round_trip(DOWN_KEXEC, 1);
}

static void test_reboot(void)
{
    round_trip(DOWN_REBOOT, 2);
}

static void test_crash(void)
{
    round_trip(DOWN_CRASH, 3);
}

int main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    suite_t0 = g_get_monotonic_time();
    summary = g_string_new(NULL);
    g_test_add_func("/reboot/boot", test_boot);
    g_test_add_func("/reboot/is-pmem", test_is_pmem);
    g_test_add_func("/reboot/suites-on-dax", test_suites_on_dax);
    g_test_add_func("/reboot/kexec", test_kexec);
    g_test_add_func("/reboot/reboot", test_reboot);
    g_test_add_func("/reboot/crash", test_crash);
    rc = g_test_run();
    g_test_message("phase times (TCG, L1 on 2 vCPUs):\n%s  total %.1f s",
                   summary->str, secs(suite_t0, g_get_monotonic_time()));
    l1_kill();
    if (l1.dir && rc == 0) {
        test_env_rmtree(l1.dir);
    }
    return rc;
}
