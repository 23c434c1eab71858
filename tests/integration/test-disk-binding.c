/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Issue 19 end to end, with the patched QEMU and the busybox Linux guest
 * (tests/lib/guest.c), on ext4 (the build directory's filesystem): a
 * pmem: image is bound to the files behind the guest's disks
 * (backend/BINDING.md, "Disks").  The VM has a raw virtio disk
 * (-drive) and a qcow2 virtio disk whose backing file is raw (-blockdev,
 * so that the block layer, not the command line, names the chain).
 *
 * Each test boots the guest on fresh disk files, saves it through pmem:
 * and quits QEMU (the clean quit of a cpr-reboot), then:
 *
 * - unchanged: a destination with the same disks continues the guest
 *   (tick N+1): nothing QEMU itself did to the images after the commit,
 *   its close included, nor the destination's own open, is refused;
 * - rewrite: 4 KiB of the raw disk rewritten (dd conv=notrunc) is refused
 *   naming disk.raw;
 * - replaced: a copy of the raw disk with its first 4 KiB changed, moved
 *   over it, is refused naming disk.raw (another file);
 * - truncated: the raw disk 4 KiB shorter is refused naming disk.raw;
 * - backing: 4 KiB of the qcow2 disk's backing file rewritten is refused
 *   naming base.raw;
 * - copy: a byte-identical copy of the raw disk moved over it continues,
 *   with a warning;
 * - override: the rewritten raw disk with CPR_PMEM_ALLOW=disk continues,
 *   with one warning per difference in QEMU's log.
 *
 * Every refused destination keeps waiting (a second migrate_incoming is
 * refused the same way).  Prints the pause and in_open (validate) times.
 */
#include "cpr-cycle.h"
#include "guest.h"
#include "test-env.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS   180000  /* TCG, on a shared machine */
#define TICKS_BEFORE      3
#define TICKS_AFTER       4
#define TICK_TIMEOUT_MS   60000
#define DISK_MIB          "16"

typedef struct Vm {
    char *dir, *ram, *serial, *image, *uri;
    char *raw, *base, *overlay;
    char *drive_arg, *base_arg, *ovl_arg;
    const char *args_extra[8];
    GuestConfig cfg;
    guint last_tick, nticks;
} Vm;

static const char *accel(void)
{
    return guest_accel(test_env_qemu());
}

/* Run a command an operator would (cp, mv, dd, qemu-img): must succeed. */
static void run(const char *const *argv)
{
    g_autofree char *err = NULL;
    g_autofree char *cmd = g_strjoinv(" ", (char **)argv);
    GError *e = NULL;
    int status;

    g_test_message("$ %s", cmd);
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                 NULL, &err, &status, &e);
    g_assert_no_error(e);
    g_spawn_check_wait_status(status, &e);
    if (e) {
        g_error("%s: %s: %s", cmd, e->message, err);
    }
}

/* Random bytes, so that every sampled block of a disk means something. */
static void fill(const char *path)
{
    g_autofree char *of = g_strdup_printf("of=%s", path);
    const char *argv[] = { "dd", "if=/dev/urandom", of, "bs=1M",
                           "count=" DISK_MIB, "status=none", NULL };

    run(argv);
}

/* Overwrite 4 KiB at @offset of @path in place. */
static void rewrite(const char *path, const char *block)
{
    g_autofree char *of = g_strdup_printf("of=%s", path);
    g_autofree char *seek = g_strdup_printf("seek=%s", block);
    const char *argv[] = { "dd", "if=/dev/urandom", of, "bs=4096", "count=1",
                           seek, "conv=notrunc", "status=none", NULL };

    run(argv);
}

static Vm *vm_new(void)
{
    Vm *vm = g_new0(Vm, 1);
    const char *qcreate[] = { "qemu-img", "create", "-q", "-f", "qcow2",
                              "-b", NULL, "-F", "raw", NULL, NULL };
    guint i = 0;

    vm->dir = test_env_mkdtemp(TEST_BASE_DISK);
    vm->ram = g_strdup_printf("%s/vm.ram", vm->dir);
    vm->serial = g_strdup_printf("%s/serial.log", vm->dir);
    vm->image = g_strdup_printf("%s/vm.cpr", vm->dir);
    vm->uri = g_strdup_printf("pmem:%s", vm->image);
    vm->raw = g_strdup_printf("%s/disk.raw", vm->dir);
    vm->base = g_strdup_printf("%s/base.raw", vm->dir);
    vm->overlay = g_strdup_printf("%s/disk.qcow2", vm->dir);
    fill(vm->raw);
    fill(vm->base);
    qcreate[6] = vm->base;
    qcreate[9] = vm->overlay;
    run(qcreate);
    vm->drive_arg = g_strdup_printf("file=%s,format=raw,if=virtio,id=d0",
                                    vm->raw);
    vm->base_arg = g_strdup_printf("{\"driver\":\"raw\",\"node-name\":\"base0\","
                                   "\"file\":{\"driver\":\"file\","
                                   "\"filename\":\"%s\"}}", vm->base);
    vm->ovl_arg = g_strdup_printf("{\"driver\":\"qcow2\",\"node-name\":\"d1\","
                                  "\"backing\":\"base0\",\"file\":{\"driver\":"
                                  "\"file\",\"filename\":\"%s\"}}",
                                  vm->overlay);
    vm->args_extra[i++] = "-drive";
    vm->args_extra[i++] = vm->drive_arg;
    vm->args_extra[i++] = "-blockdev";
    vm->args_extra[i++] = vm->base_arg;
    vm->args_extra[i++] = "-blockdev";
    vm->args_extra[i++] = vm->ovl_arg;
    vm->args_extra[i++] = "-device";
    vm->args_extra[i++] = "virtio-blk-pci,drive=d1";
    vm->cfg.extra = vm->args_extra;
    return vm;
}

static void vm_free(Vm *vm)
{
    test_env_rmtree(vm->dir);
    g_free(vm->dir);
    g_free(vm->ram);
    g_free(vm->serial);
    g_free(vm->image);
    g_free(vm->uri);
    g_free(vm->raw);
    g_free(vm->base);
    g_free(vm->overlay);
    g_free(vm->drive_arg);
    g_free(vm->base_arg);
    g_free(vm->ovl_arg);
    g_free(vm);
}

static QemuProc *start(Vm *vm, const char *name, const char *incoming,
                       const char *allow)
{
    g_auto(GStrv) args = NULL;
    QemuProcOpts opts = { .binary = test_env_qemu(), .dir = vm->dir,
                          .name = name };
    QemuProc *p;
    GError *err = NULL;

    args = guest_args_config(accel(), vm->ram, vm->serial, &vm->cfg, &err);
    g_assert_no_error(err);
    if (!incoming) {
        /* the save's phases, for the commit's time (cpr_save_quit) */
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();

        g_strv_builder_addv(b, (const char **)args);
        g_strv_builder_addv(b, (const char **)cpr_trace_args);
        g_strfreev(args);
        args = g_strv_builder_end(b);
    }
    opts.args = (const char *const *)args;
    /* libc's: the harness starts no thread that reads the environment */
    if (allow) {
        setenv("CPR_PMEM_ALLOW", allow, 1);
    }
    p = incoming ? qemu_proc_start_incoming(&opts, incoming, &err)
                 : qemu_proc_start(&opts, &err);
    if (allow) {
        unsetenv("CPR_PMEM_ALLOW");
    }
    g_assert_no_error(err);
    return p;
}

/* Boot the guest, save it through pmem: and quit its QEMU; returns the
 * commit's time (the pause's share of the transport), in us. */
static double boot_save(Vm *vm)
{
    g_autoptr(QemuProc) src = start(vm, "src", NULL, NULL);
    g_autoptr(GArray) ticks = NULL;
    g_autofree char *log = NULL;
    CprSample t;
    GError *err = NULL;

    guest_wait_tick(vm->serial, TICKS_BEFORE, BOOT_TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);
    cpr_sample_clear(&t);
    cpr_save(src, CPR_SETUP_SHARED, vm->uri, &t, &err);
    g_assert_no_error(err);
    log = qemu_proc_log(src);
    /* every file of the VM could be recorded */
    g_assert_null(strstr(log, "cannot check"));
    ticks = guest_ticks(vm->serial);
    g_assert_cmpuint(ticks->len, >, 0);
    vm->nticks = ticks->len;
    vm->last_tick = g_array_index(ticks, guint, ticks->len - 1);
    g_test_message("saved at tick %u: pause %.0f us, commit %.0f us",
                   vm->last_tick, t.pause_us, t.commit_us);
    return t.commit_us;
}

static QemuProc *dst_start(Vm *vm, const char *name, const char *allow)
{
    QemuProc *dst = start(vm, name, "defer", allow);
    GError *err = NULL;

    cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    return dst;
}

static void assert_has(const char *text, const char *needle)
{
    if (!strstr(text, needle)) {
        g_error("\"%s\" not in:\n%s", needle, text);
    }
}

/* migrate_incoming refused for @needles, twice; the destination waits. */
static void refused(QemuProc *dst, const char *uri,
                    const char *const *needles)
{
    Qmp *qmp = qemu_proc_qmp(dst);
    g_autofree char *status = NULL;
    GError *err = NULL, *again = NULL;

    g_assert_false(qmp_migrate_incoming(qmp, uri, &err));
    g_assert_nonnull(err);
    g_test_message("refused: %s", err->message);
    assert_has(err->message, "CPR_PMEM_ALLOW=disk overrides");
    for (; *needles; needles++) {
        assert_has(err->message, *needles);
    }
    g_assert_false(qmp_migrate_incoming(qmp, uri, &again));
    g_assert_cmpstr(again->message, ==, err->message);
    status = qmp_query_status(qmp, NULL);
    g_assert_cmpstr(status, ==, "inmigrate");
    g_error_free(err);
    g_error_free(again);
}

/* migrate_incoming loads and the guest counts on from the save. */
static void restored(Vm *vm, QemuProc *dst)
{
    Qmp *qmp = qemu_proc_qmp(dst);
    g_autoptr(JsonObject) resume = NULL;
    g_autoptr(GArray) ticks = NULL;
    GError *err = NULL;

    qmp_migrate_incoming(qmp, vm->uri, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    resume = qmp_wait_event(qmp, "RESUME", 60000, &err);
    g_assert_no_error(err);
    guest_wait_tick(vm->serial, vm->last_tick + TICKS_AFTER, TICK_TIMEOUT_MS,
                    NULL, &err);
    g_assert_no_error(err);
    ticks = guest_ticks(vm->serial);
    g_assert_cmpuint(ticks->len, >, vm->nticks);
    g_assert_cmpuint(g_array_index(ticks, guint, vm->nticks), ==,
                     vm->last_tick + 1);
}

static void test_unchanged(void)
{
    Vm *vm = vm_new();
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;

    boot_save(vm);
    dst = dst_start(vm, "dst", NULL);
    restored(vm, dst);
    log = qemu_proc_log(dst);
    g_assert_null(strstr(log, "disk /"));
    vm_free(vm);
}

static void refuse_after(void (*change)(Vm *vm), const char *const *needles)
{
    Vm *vm = vm_new();
    g_autoptr(QemuProc) dst = NULL;

    boot_save(vm);
    change(vm);
    dst = dst_start(vm, "dst", NULL);
    refused(dst, vm->uri, needles);
    vm_free(vm);
}

static void change_rewrite(Vm *vm)
{
    rewrite(vm->raw, "1000");
}

static void test_rewrite(void)
{
    const char *needles[] = { "/disk.raw: modified since the save", NULL };

    refuse_after(change_rewrite, needles);
}

static void change_replace(Vm *vm)
{
    g_autofree char *copy = g_strdup_printf("%s.new", vm->raw);
    const char *cp[] = { "cp", vm->raw, copy, NULL };
    const char *mv[] = { "mv", "-f", copy, vm->raw, NULL };

    run(cp);
    rewrite(copy, "0");
    run(mv);
}

static void test_replaced(void)
{
    const char *needles[] = { "/disk.raw: not the file the VM was saved "
                              "with", NULL };

    refuse_after(change_replace, needles);
}

static void change_truncate(Vm *vm)
{
    const char *argv[] = { "truncate", "-s", "-4096", vm->raw, NULL };

    run(argv);
}

static void test_truncated(void)
{
    const char *needles[] = { "/disk.raw: 16773120 bytes",
                              "truncated since the save", NULL };

    refuse_after(change_truncate, needles);
}

static void change_backing(Vm *vm)
{
    rewrite(vm->base, "7");
}

static void test_backing(void)
{
    const char *needles[] = { "/base.raw: modified since the save", NULL };

    refuse_after(change_backing, needles);
}

static void test_copy(void)
{
    Vm *vm = vm_new();
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *copy = g_strdup_printf("%s.copy", vm->raw);
    g_autofree char *log = NULL;
    const char *cp[] = { "cp", NULL, NULL, NULL };
    const char *mv[] = { "mv", "-f", NULL, NULL, NULL };

    boot_save(vm);
    cp[1] = vm->raw;
    cp[2] = copy;
    mv[2] = copy;
    mv[3] = vm->raw;
    run(cp);
    run(mv);
    dst = dst_start(vm, "dst", NULL);
    restored(vm, dst);
    log = qemu_proc_log(dst);
    assert_has(log, "taken for a copy");
    vm_free(vm);
}

static void test_override(void)
{
    Vm *vm = vm_new();
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;

    boot_save(vm);
    rewrite(vm->raw, "1000");
    rewrite(vm->base, "7");
    dst = dst_start(vm, "dst", "disk");
    restored(vm, dst);
    log = qemu_proc_log(dst);
    g_test_message("destination log:\n%s", log);
    assert_has(log, "CPR_PMEM_ALLOW=disk: resuming");
    assert_has(log, "/disk.raw: modified since the save");
    assert_has(log, "/base.raw: modified since the save");
    vm_free(vm);
}

/*
 * The commit with the three disk files and without them (the same VM,
 * no -drive or -blockdev): printed, not asserted (one sample each, on a
 * shared machine).
 */
static void test_pause_cost(void)
{
    Vm *with = vm_new(), *without = vm_new();
    double a, b;

    without->cfg.extra = NULL;
    a = boot_save(with);
    b = boot_save(without);
    g_test_message("commit with 3 disk files %.0f us, without %.0f us: "
                   "%.0f us per disk file", a, b, (a - b) / 3);
    printf("# disk binding in the pause: commit %.0f us with 3 disk files, "
           "%.0f us without\n", a, b);
    vm_free(with);
    vm_free(without);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!g_str_equal(test_env_scheme(), "pmem")) {
        g_test_skip("pmem: only");
        return g_test_run();
    }
    g_test_add_func("/disk-binding/unchanged", test_unchanged);
    g_test_add_func("/disk-binding/rewrite", test_rewrite);
    g_test_add_func("/disk-binding/replaced", test_replaced);
    g_test_add_func("/disk-binding/truncated", test_truncated);
    g_test_add_func("/disk-binding/backing", test_backing);
    g_test_add_func("/disk-binding/copy", test_copy);
    g_test_add_func("/disk-binding/override", test_override);
    g_test_add_func("/disk-binding/pause-cost", test_pause_cost);
    return g_test_run();
}
