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
 *
 * With CPR_L1_PMEM=e820 (test "reboot-e820"), L1 has no NVDIMM: it boots
 * with memmap=MEMMAP, DRAM-backed pmem of an e820 region with fs-dax on
 * it, which a kexec keeps and a cold reboot does not.  cpr-host-update
 * must refuse a cold reboot before touching a VM, and restore two VMs
 * after a kexec; cpr-pmem check --for=reboot refuses their images,
 * --for=kexec takes them.
 *
 * The NVDIMM host's kexec round runs three VMs: vm0 under the stock QEMU
 * that runs L1 too (shipped in the image; no transport hook, so
 * cpr-host-update saves it through exec:cpr-pmem save and restores it
 * through exec:cpr-pmem load), vm1 under the patched QEMU, vm2 under the
 * patched QEMU with its RAM on device DAX.  One save, one restore.
 */
#include "l1-host.h"
#include "test-env.h"

#include <stdio.h>
#include <string.h>

#define NVDIMM_SIZE "2G"
/* DRAM-backed pmem: wholly inside L1's usable RAM below 2 GiB (512M!1536M
 * overlapped the reserved e820 tail and came up in two pieces). */
#define MEMMAP "512M!1G"

static L1Host *l1;
static char *l1_dir;
static GString *summary;
static gint64 suite_t0;
static gboolean e820;   /* memmap= pmem, no NVDIMM */

static double secs(gint64 from, gint64 to)
{
    return l1_secs(from, to);
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

static void log_line(const char *line)
{
    g_test_message("%s", line);
}

static const char *l1_qemu(void)
{
    const char *q = g_getenv("CPR_L1_QEMU");

    return q && *q ? q : "/usr/bin/qemu-system-x86_64";
}

/* Boot: from @start to "@@init" (kernel) and "@@ready" (pmem mounted). */
static void wait_boot(const char *what, gint64 start)
{
    double up, mounted;
    gboolean first;

    l1_wait_boot(l1, start, &up, &mounted, &first);
    phase("%-28s %6.2f s to userspace, %6.2f s more to /mnt/pmem mounted%s",
          what, up, mounted, first ? " (first boot: namespace + mkfs)" : "");
}

static char *build_path(const char *rel)
{
    return g_build_filename(CPR_BUILD_ROOT, rel, NULL);
}

static char *driver_cmd(const char *sub, int round, const char *extra)
{
    g_autofree char *drv = build_path("tests/reboot/reboot-l2");
    g_autofree char *tool = build_path("tools/host-update/cpr-host-update");
    g_autofree char *plugins = build_path("backend");

    return g_strdup_printf("env -u PMEM_IS_PMEM_FORCE QEMU_TRANSPORT_PLUGIN_DIR=%s "
                           "%s --qemu=%s --tool=%s --round=%d %s%s",
                           plugins, drv, g_getenv("CPR_QEMU"), tool, round,
                           sub, extra ? extra : "");
}

static void test_boot(void)
{
    g_autofree char *kernel = NULL, *initrd = NULL, *disk = NULL;
    double took;
    gint64 t;

    /* The stock QEMU goes in too: the kexec round's vm0 runs it. */
    l1_image(g_getenv("CPR_BUILD_L1_SCRIPT"), g_getenv("CPR_QEMU"),
             CPR_BUILD_ROOT, l1_qemu(), &kernel, &initrd, &disk, &took);
    phase("%-28s %6.2f s (%s)", "L1 image (cached or built)", took, disk);
    l1_dir = test_env_mkdtemp(TEST_BASE_DISK);
    l1 = l1_new(l1_dir, l1_qemu(), kernel, initrd, disk,
                e820 ? NULL : NVDIMM_SIZE, log_line);
    if (e820) {
        l1_use_memmap(l1, MEMMAP);
    }
    t = l1_start(l1);
    wait_boot(e820 ? "L1 first boot, memmap=" MEMMAP : "L1 first boot", t);
}

/* The pmem is what the mode says: the nd bus's provider, the range. */
static void test_provider(void)
{
    g_autoptr(GString) out = g_string_new(NULL);

    l1_run_ok(l1, "cat /sys/bus/nd/devices/ndbus0/provider "
              "/sys/bus/nd/devices/region0/size /proc/cmdline; "
              "ls /sys/bus/nd/devices", out);
    if (e820) {
        g_assert_nonnull(strstr(out->str, "e820\n"));
        g_assert_nonnull(strstr(out->str, "memmap=" MEMMAP));
        g_assert_nonnull(strstr(out->str, "536870912\n"));   /* 512 MiB */
        g_assert_null(strstr(out->str, "nfit"));
    } else {
        g_assert_nonnull(strstr(out->str, "ACPI.NFIT\n"));
    }
    phase("%-28s %s", "pmem provider", e820 ? "e820 (memmap=" MEMMAP
                                            ", no NVDIMM)" : "ACPI.NFIT");
}

static void test_is_pmem(void)
{
    g_autofree char *probe = build_path("tests/reboot/pmem-probe");
    g_autofree char *cmd = g_strdup_printf(
        "env -u PMEM_IS_PMEM_FORCE %s /mnt/pmem && grep ' /mnt/pmem ' /proc/mounts",
        probe);
    g_autoptr(GString) out = g_string_new(NULL);

    l1_run_ok(l1, cmd, out);
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
        "format", "roundtrip", "image-refusals", "create", NULL,
    };
    g_autofree char *crash = build_path("tests/crash/test-crash");
    g_autofree char *bg = g_strdup_printf(
        "mkdir -p /mnt/pmem/crash && (env -u PMEM_IS_PMEM_FORCE "
        "CPR_TEST_DIR=/mnt/pmem/crash %s pmem >/tmp/crash.log 2>&1; "
        "echo \"exit=$?\" >>/tmp/crash.log; rm -rf /mnt/pmem/crash) "
        ">/dev/null 2>&1 &", crash);
    gint64 t0 = g_get_monotonic_time();

    l1_run_ok(l1, bg, NULL);
    for (int i = 0; units[i]; i++) {
        g_autofree char *exe = g_strdup_printf("tests/unit/test-%s", units[i]);
        g_autofree char *path = build_path(exe);
        g_autofree char *cmd = g_strdup_printf(
            "mkdir -p /mnt/pmem/unit && cd /mnt/pmem/unit && "
            "env -u PMEM_IS_PMEM_FORCE CPR_TEST_DIR=/mnt/pmem/unit "
            "CPR_EXPECT_PMEM=1 %s --tap; rc=$?; cd /; rm -rf /mnt/pmem/unit; "
            "exit $rc", path);
        gint64 t = g_get_monotonic_time();

        l1_run_ok(l1, cmd, NULL);
        phase("unit %-23s %6.2f s on fs-dax", units[i],
              secs(t, g_get_monotonic_time()));
    }
    l1_run_ok(l1, "while ! grep -q '^exit=' /tmp/crash.log; do sleep 1; done; "
              "cat /tmp/crash.log; exit $(sed -n 's/^exit=//p' /tmp/crash.log)",
              NULL);
    phase("%-28s %6.2f s (unit and crash suites on fs-dax)", "suites on DAX",
          secs(t0, g_get_monotonic_time()));
}

static char *tool_path(const char *tool)
{
    g_autofree char *rel = g_strdup_printf("tools/%s/%s", tool, tool);

    return build_path(rel);
}

/*
 * The kexec round's vm0, under the stock QEMU: cpr-host-update chose the
 * exec: helper for it alone (its note in @save_out), its manifest's
 * restore URI was exec:cpr-pmem load of its image, the image binds its
 * RAM file (the helper found its QEMU through /proc), and it came back
 * (its @@verified line in @restore_out, patterns checked, no hook).
 */
static void stock_verified(const char *save_out, const char *restore_out)
{
    static const char note[] = ": QEMU has no pmem: transport: saving "
                               "through the exec: helper";
    g_autofree char *vm0_note = g_strconcat("vm0", note, NULL);
    g_autofree char *pmem = tool_path("cpr-pmem");
    g_autofree char *info = g_strdup_printf("%s info /mnt/pmem/l2/vm0.cpr",
                                            pmem);
    g_autoptr(GString) uris = g_string_new(NULL);
    const char *v = strstr(restore_out, "@@verified vm0 ");
    g_autofree char *vline = v ? g_strndup(v, strcspn(v, "\n")) : NULL;

    g_assert_nonnull(strstr(save_out, vm0_note));
    g_assert_null(strstr(save_out, "vm1: QEMU has no pmem:"));
    g_assert_null(strstr(save_out, "vm2: QEMU has no pmem:"));
    l1_run_ok(l1, "grep -o 'exec:[^\"]*' /mnt/pmem/l2/manifest.json.restored",
              uris);
    g_assert_nonnull(strstr(uris->str, " load "));
    g_assert_nonnull(strstr(uris->str, "/mnt/pmem/l2/vm0.cpr"));
    g_assert_null(strstr(uris->str, "vm1.cpr"));
    g_assert_null(strstr(uris->str, "vm2.cpr"));
    g_assert_nonnull(vline);
    /* The helper found its QEMU through /proc and bound the image to the
     * RAM file that QEMU maps, on fs-dax (parent-vm.c). */
    g_string_truncate(uris, 0);
    l1_run_ok(l1, info, uris);
    g_assert_nonnull(strstr(uris->str, "    file: /mnt/pmem/l2/vm0.ram\n"));
    g_assert_null(strstr(uris->str, "sampled pages: 0\n"));
    g_test_message("stock-qemu vm restored: %s", vline);
    phase("kexec: %-20s vm0 under %s (no hook): saved by exec:cpr-pmem "
          "save, restored by exec:cpr-pmem load, patterns verified",
          "stock-qemu vm", l1_qemu());
}

typedef enum { DOWN_KEXEC, DOWN_REBOOT, DOWN_CRASH } Down;

/*
 * One round: L2 saved by cpr-host-update, L1 down the way @how says and
 * back, L2 restored and checked.
 */
static void round_trip(Down how, int round)
{
    static const char *const names_nfit[] = { "kexec", "reboot", "crash" };
    static const char *const names_e820[] = { "e820 kexec", "e820 reboot",
                                              "e820 crash" };
    const char *const *names = e820 ? names_e820 : names_nfit;
    static const char *const cmds[] = {
        NULL,                        /* the tool's default: kexec -e */
        " --reboot-cmd='reboot -f'",
        /* the host kills L1 when the tool runs this */
        " --reboot-cmd='sleep 3600'",
    };
    /* The NVDIMM host's kexec round: a third VM, its RAM on device DAX,
     * and vm0 under the stock QEMU. */
    gboolean devdax = !e820 && how == DOWN_KEXEC;
    const char *dax = devdax ? " --vms=3 --devdax=" L1_DEVDAX : "";
    g_autofree char *stock = devdax ? g_strdup_printf(" --stock-qemu=%s",
                                                      l1_qemu())
                                    : g_strdup("");
    g_autofree char *save_extra = g_strconcat(dax, stock, cmds[how], NULL);
    g_autoptr(GString) saved = g_string_new(NULL);
    g_autofree char *save = driver_cmd("save", round, save_extra);
    g_autofree char *restore = driver_cmd("restore", round, dax);
    g_autofree char *what = g_strdup_printf("%s: down to userspace", names[how]);
    g_autoptr(GString) out = g_string_new(NULL);
    gint64 t_save, t_down, t_up, t_restored;
    char *line;

    if (how == DOWN_KEXEC) {
        l1_run_ok(l1, "kexec -l /boot/vmlinuz --initrd=/boot/initrd.img --reuse-cmdline",
                  NULL);
    }
    t_save = g_get_monotonic_time();
    l1_send(l1, save);
    /* The tool says so just before it runs the reboot command. */
    for (;;) {
        line = l1_line(l1, L1_CMD_TIMEOUT_S, &t_down);
        if (strstr(line, "cpr-host-update: manifest ") && strstr(line, "running:")) {
            break;
        }
        if (g_str_has_prefix(line, "@@rc ")) {
            g_error("the save ended before the reboot: %s", line);
        }
        g_string_append_printf(saved, "%s\n", line);
        g_free(line);
    }
    g_free(line);
    phase("%s: %-20s %6.2f s (L2 start, patterns, save, check, manifest)",
          names[how], "save", secs(t_save, t_down));
    if (how == DOWN_CRASH) {
        l1_kill(l1);
        t_down = l1_start(l1);
    }
    wait_boot(what, t_down);
    t_up = g_get_monotonic_time();
    l1_run_ok(l1, restore, out);
    t_restored = g_get_monotonic_time();
    for (int vm = 0; vm < (devdax ? 3 : 2); vm++) {
        g_autofree char *want = g_strdup_printf(
            "@@verified vm%d round=%d ram=ok cmos=ok qemu=", vm, round);
        const char *got = strstr(out->str, want);
        g_autofree char *vline = got ? g_strndup(got, strcspn(got, "\n"))
                                     : NULL;

        g_assert_nonnull(vline);
        /* The stock vm0 ran without the hook before and after, the
         * others with it. */
        g_assert_true(g_str_has_suffix(vline, devdax && vm == 0 ? " hook=no"
                                                                : " hook=yes"));
    }
    if (devdax) {
        stock_verified(saved->str, out->str);
    }
    phase("%s: %-20s %6.2f s (cpr-host-update restore, %s, patterns "
          "verified)", names[how], "restore", secs(t_up, t_restored),
          devdax ? "3 VMs, vm2's RAM on device DAX " L1_DEVDAX : "2 VMs");
}

static void test_kexec(void)
{
    round_trip(DOWN_KEXEC, 1);
    if (e820) {
        test_provider();    /* the same memmap= after the kexec */
    }
}

static void test_reboot(void)
{
    round_trip(DOWN_REBOOT, 2);
}

static void test_crash(void)
{
    round_trip(DOWN_CRASH, 3);
}

/*
 * Device DAX wiped while the host was down: one VM with its RAM on
 * L1_DEVDAX saved (a reboot command that does nothing), its QEMU gone,
 * the device zeroed: the restore (QEMU's migrate-incoming, as
 * cpr-host-update reports it) refuses it, naming the device and the
 * zeroed pages.  (Another device at its path:
 * tests/unit/test-binding-verify.c.)
 */
static void test_devdax_zeroed(void)
{
    const char *dax = " --vms=1 --devdax=" L1_DEVDAX;
    g_autofree char *extra = g_strconcat(dax, " --reboot-cmd=true", NULL);
    g_autofree char *save = driver_cmd("save", 5, extra);
    g_autofree char *restore = driver_cmd("restore", 5, dax);
    g_autofree char *drv = build_path("tests/reboot/reboot-l2");
    g_autofree char *quit = g_strdup_printf("%s quit-all --vms=1", drv);
    g_autofree char *zero = g_strdup_printf("%s zero-dax --devdax=" L1_DEVDAX,
                                            drv);
    g_autoptr(GString) out = g_string_new(NULL);

    l1_run_ok(l1, save, out);
    g_assert_nonnull(strstr(out->str, "reboot command returned"));
    l1_run_ok(l1, quit, NULL);
    l1_run_ok(l1, zero, NULL);
    g_string_truncate(out, 0);
    g_assert_cmpint(l1_run(l1, restore, out), !=, 0);
    g_assert_nonnull(strstr(out->str, "vm0: not restored: "));
    g_assert_nonnull(strstr(out->str, "refusing to resume from "
                            "/mnt/pmem/l2/vm0.cpr"));
    /* The guest wrote few pages: the last page (a pattern word) at least
     * is among the sampled. */
    g_assert_nonnull(strstr(out->str, L1_DEVDAX ": "));
    g_assert_nonnull(strstr(out->str, " sampled pages differ from the saved "
                            "VM and are all zero: the device looks wiped"));
    phase("devdax: %-19s restore refused (%s zeroed)", "zeroed", L1_DEVDAX);
}

/*
 * e820: cpr-host-update with a cold reboot command refuses before it
 * touches a VM, naming the DRAM-backed pmem (@what): no image is made,
 * nothing rebooted, and both VMs still run (reboot-l2 quit-all finds and
 * stops them).  @images: where the images go.
 */
static void cold_refused(const char *images, const char *what)
{
    g_autofree char *extra = g_strdup_printf(
        " --image-dir=%s --reboot-cmd='reboot -f'", images);
    g_autofree char *save = driver_cmd("save", 9, extra);
    g_autofree char *quit = g_strdup_printf("%s quit-all",
                                            build_path("tests/reboot/reboot-l2"));
    g_autofree char *none = g_strdup_printf(
        "test ! -e %s/vm0.cpr && test ! -e %s/vm1.cpr && "
        "test ! -e /mnt/pmem/l2/manifest.json", images, images);
    g_autofree char *why = g_strdup_printf(
        "cpr-host-update: vm0: %s is on DRAM-backed pmem (e820, memmap=): it "
        "survives a kexec only, and 'reboot -f' is not one", what);
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) quits = g_string_new(NULL);
    gint64 t = g_get_monotonic_time();

    g_assert_cmpint(l1_run(l1, save, out), ==, 1);
    g_assert_nonnull(strstr(out->str, why));
    g_assert_nonnull(strstr(out->str, "no VM was touched"));
    g_assert_nonnull(strstr(out->str, "cpr-host-update save: exit 1"));
    g_assert_null(strstr(out->str, "manifest "));
    l1_run_ok(l1, none, NULL);
    l1_run_ok(l1, quit, quits);
    g_assert_nonnull(strstr(quits->str, "@@quit vm0 "));
    g_assert_nonnull(strstr(quits->str, "@@quit vm1 "));
    phase("e820: %-20s %6.2f s (reboot -f refused for %s before any VM "
          "was touched; both VMs ran on)", "cold reboot refused",
          secs(t, g_get_monotonic_time()), what);
}

static void test_e820_cold_refused(void)
{
    /* the images on fs-dax over memmap= too */
    cold_refused("/mnt/pmem/l2", "its image /mnt/pmem/l2/vm0.cpr");
    /* the images on tmpfs: the guest RAM, as QEMU maps it, is the reason */
    cold_refused("/run/l2-images", "its guest RAM /mnt/pmem/l2/vm0.ram");
}

/* e820: the images the kexec round restored from, as check judges them. */
static void test_e820_check(void)
{
    g_autofree char *pmem = tool_path("cpr-pmem");
    g_autofree char *reboot = g_strdup_printf(
        "%s check --for=reboot /mnt/pmem/l2/vm0.cpr", pmem);
    g_autofree char *kexec = g_strdup_printf(
        "%s check --for=kexec /mnt/pmem/l2/vm0.cpr", pmem);
    g_autoptr(GString) out = g_string_new(NULL);

    g_assert_cmpint(l1_run(l1, reboot, out), ==, 1);
    g_assert_nonnull(strstr(out->str, "would not survive a host reboot, only "
                            "a kexec: the image is on DRAM-backed pmem"));
    g_assert_nonnull(strstr(out->str, " in /mnt/pmem/l2/vm0.ram is on "
                            "DRAM-backed pmem"));
    g_string_truncate(out, 0);
    l1_run_ok(l1, kexec, out);
    g_assert_nonnull(strstr(out->str, "survives a kexec (image: pmem)"));
    /* The save warned too, in QEMU's log. */
    g_string_truncate(out, 0);
    l1_run_ok(l1, "grep -h 'DRAM-backed pmem' /mnt/pmem/l2/vm0.log", out);
    g_assert_nonnull(strstr(out->str, "/mnt/pmem/l2/vm0.cpr: the image is on "
                            "DRAM-backed pmem (e820 pmem, kexec only"));
    phase("e820: %-20s check --for=reboot refuses (exit 1), --for=kexec "
          "takes it", "image check");
}

int main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    suite_t0 = g_get_monotonic_time();
    summary = g_string_new(NULL);
    e820 = !g_strcmp0(g_getenv("CPR_L1_PMEM"), "e820");
    if (e820) {
        g_test_add_func("/reboot-e820/boot-memmap", test_boot);
        g_test_add_func("/reboot-e820/provider-e820", test_provider);
        g_test_add_func("/reboot-e820/is-pmem", test_is_pmem);
        g_test_add_func("/reboot-e820/cold-reboot-refused",
                        test_e820_cold_refused);
        g_test_add_func("/reboot-e820/kexec-same-memmap", test_kexec);
        g_test_add_func("/reboot-e820/check-for-reboot-and-kexec",
                        test_e820_check);
    } else {
        g_test_add_func("/reboot/boot", test_boot);
        g_test_add_func("/reboot/provider-nfit", test_provider);
        g_test_add_func("/reboot/is-pmem", test_is_pmem);
        g_test_add_func("/reboot/suites-on-dax", test_suites_on_dax);
        g_test_add_func("/reboot/kexec-devdax-and-stock-qemu-vms", test_kexec);
        g_test_add_func("/reboot/reboot", test_reboot);
        g_test_add_func("/reboot/crash", test_crash);
        g_test_add_func("/reboot/devdax-zeroed-refused", test_devdax_zeroed);
    }
    rc = g_test_run();
    g_test_message("phase times (TCG, L1 on 2 vCPUs):\n%s  total %.1f s",
                   summary->str, secs(suite_t0, g_get_monotonic_time()));
    l1_free(l1);
    if (l1_dir && rc == 0) {
        test_env_rmtree(l1_dir);
    }
    return rc;
}
