/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Issue 9 end to end, with the patched QEMU and the busybox Linux guest
 * (tests/lib/guest.c): a pmem: image is bound to the RAM x-ignore-shared
 * leaves in place and to the command line (backend/BINDING.md).
 *
 * Every mistake below is refused by migrate_incoming with a message that
 * names the file or the option and the reason; the destination keeps
 * waiting (a second migrate_incoming is refused the same way), and it
 * leaves the RAM file as it found it: no destination QEMU started with
 * -incoming defer and without prealloc changes the file's inode, size or
 * mtime before migrate_incoming (the mtime rule relies on it), so that
 * the corrected retry that follows continues the guest.  Refused:
 *
 * - an extra device, a missing device, a changed -smp, a smaller -m (a
 *   larger one QEMU itself refuses: the file is too small), an older
 *   versioned machine type;
 * - the RAM file of another VM; another VM's image on this VM's
 *   destination (then this VM's image on the same destination loads);
 * - stale RAM: a copy taken a few seconds before the save, put back as
 *   a new file (mv: another inode) and over the same inode (cp); with
 *   CPR_PMEM_ALLOW=ram the stale RAM loads and the guest does not go on
 *   (it crashes, hangs or counts from the stale RAM's number);
 * - the RAM file recreated, all zero (a tmpfs across a real reboot): kept
 *   aside and put back afterwards, or deleted (ext4 gives the new file
 *   the old inode number; the birth time tells them apart).
 *
 * Continued, the guest's counter going on from the save (tick N+1):
 *
 * - the same RAM and command line;
 * - a command line that differs only in ignored options (monitor socket
 *   paths, -pidfile, -name, -D, -d, -trace, -display, -chardev paths),
 *   with prealloc=on (the PREALLOC flag excuses the mtime it sets);
 * - CPR_PMEM_ALLOW=cmdline (an extra device) and CPR_PMEM_ALLOW=ram (the
 *   right contents written back over the file), each with its warning
 *   in QEMU's log.
 *
 * And what survives a reboot: the save-time warning for volatile memory
 * in the source's log (/dev/shm, not ext4), and cpr-pmem check
 * --for=reboot on the image (fails with the reason on /dev/shm, passes
 * on ext4).
 *
 * Every test runs on both media, /binding/shm/... (image and RAM on
 * /dev/shm, PMEM_IS_PMEM_FORCE=1) and /binding/disk/... (on ext4, where
 * the mtime and the inode numbers behave differently); meson runs each
 * set with -r (--run-prefix).  Tests of one medium share two VMs, "a"
 * and "b", saved when a test first needs them saved: any test also runs
 * alone.  A refused destination never runs the guest, so the serial log
 * goes on from the save.
 *
 * Each test runs in a forked process of its own (run_case): a failed
 * assertion or a crash fails that test alone, by name, and the others
 * still run (--keep-going).  A test that passes hands the VMs' state back
 * (a VM it restored saved again, as the next test would have); after a
 * failure, the next test boots and saves the VMs anew, so no test
 * inherits what a failed one left.
 */
#include "cpr-cycle.h"
#include "guest.h"
#include "test-env.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOT_TIMEOUT_MS   180000  /* TCG, on a shared machine */
#define TICKS_BEFORE      5
#define STALE_AGE_MS      3000    /* "a copy taken a few seconds before" */
#define TICKS_AFTER       8
#define TICK_TIMEOUT_MS   60000
#define CRASH_WATCH_MS    10000

/* The older versioned machine type the "machine" test restores with. */
#define OLD_MACHINE "pc-q35-9.2"

typedef struct Vm {
    const char *id;             /* "a", "b": file prefix */
    char *ram;                  /* RAM file */
    char *serial;               /* serial log, appended by every QEMU */
    char *image;                /* pmem: image path */
    char *uri;
    char *stale;                /* RAM copy taken before the save, or NULL */
    char *src_log;              /* log of the QEMU of the latest save */
    GuestConfig cfg;            /* the VM's configuration */
    QemuProc *src;              /* running, or NULL: saved (or never booted) */
    gboolean saved;             /* an image of the current RAM exists */
    guint last_tick;            /* the last tick before the save */
    guint nticks;               /* complete tick lines in serial then */
    struct stat at_save;        /* the RAM file after the source quit */
    char *good;                 /* the saved RAM while the file is stale */
} Vm;

typedef struct Medium {
    const char *name;           /* "shm", "disk" */
    TestBase base;
    char *dir;
    Vm a, b;
} Medium;

static Medium media[] = {
    { .name = "shm", .base = TEST_BASE_SHM },
    { .name = "disk", .base = TEST_BASE_DISK },
};

/* VM a has one more device than b, so that "missing" has one to miss. */
static const char *const a_extra[] = {
    "-device", "virtio-rng-pci,id=rng0", NULL,
};

static const char *accel(void)
{
    return guest_accel(test_env_qemu());
}

static void vm_init(Medium *m, Vm *vm, const char *id)
{
    vm->id = id;
    vm->ram = g_strdup_printf("%s/%s.ram", m->dir, id);
    vm->serial = g_strdup_printf("%s/%s-serial.log", m->dir, id);
    vm->image = g_strdup_printf("%s/%s.cpr", m->dir, id);
    vm->uri = g_strdup_printf("pmem:%s", vm->image);
    if (g_str_equal(id, "a")) {
        vm->cfg.extra = a_extra;
    }
}

static void vm_free(Vm *vm)
{
    g_clear_pointer(&vm->src, qemu_proc_free);
    g_free(vm->ram);
    g_free(vm->serial);
    g_free(vm->image);
    g_free(vm->uri);
    g_free(vm->stale);
    g_free(vm->src_log);
    g_free(vm->good);
}

static Medium *medium(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(media); i++) {
        Medium *m = &media[i];

        if (g_str_equal(m->name, name)) {
            if (!m->dir) {
                m->dir = test_env_mkdtemp(m->base);
                vm_init(m, &m->a, "a");
                vm_init(m, &m->b, "b");
                g_test_message("%s: files under %s", m->name, m->dir);
            }
            return m;
        }
    }
    g_assert_not_reached();
}

/* ---- files ---------------------------------------------------------- */

static struct stat stat_of(const char *path)
{
    struct stat st;

    if (g_stat(path, &st) < 0) {
        g_error("%s: %s", path, g_strerror(errno));
    }
    return st;
}

static gboolean same_mtime(const struct stat *x, const struct stat *y)
{
    return x->st_mtim.tv_sec == y->st_mtim.tv_sec &&
           x->st_mtim.tv_nsec == y->st_mtim.tv_nsec;
}

/* @path is the file the save left: same inode, size and mtime. */
static void assert_file_as(const char *path, const struct stat *want,
                           const char *when)
{
    struct stat st = stat_of(path);

    if (st.st_ino != want->st_ino || st.st_dev != want->st_dev ||
        st.st_size != want->st_size || !same_mtime(&st, want)) {
        g_error("%s %s: inode %lu size %ld mtime %ld.%09ld, want inode %lu "
                "size %ld mtime %ld.%09ld", path, when,
                (unsigned long)st.st_ino, (long)st.st_size,
                (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                (unsigned long)want->st_ino, (long)want->st_size,
                (long)want->st_mtim.tv_sec, want->st_mtim.tv_nsec);
    }
}

/* Run a command an operator would (cp, mv), which must succeed. */
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

static void cp(const char *from, const char *to)
{
    const char *argv[] = { "cp", from, to, NULL };

    run(argv);
}

static void mv(const char *from, const char *to)
{
    const char *argv[] = { "mv", "-f", from, to, NULL };

    run(argv);
}

/* ---- source: boot, save -------------------------------------------- */

static QemuProc *start(Vm *vm, GStrv args, const char *name,
                       const char *incoming, const char *allow)
{
    g_autofree char *dir = g_path_get_dirname(vm->ram);
    QemuProcOpts opts = {
        .binary = test_env_qemu(), .args = (const char *const *)args,
        .dir = dir, .name = name,
    };
    QemuProc *p;
    GError *err = NULL;

    /* libc's: g_unsetenv() complains once threads exist, and the
     * harness starts none that reads the environment */
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

static void boot(Vm *vm)
{
    g_auto(GStrv) args = NULL;
    g_autofree char *name = g_strdup_printf("%s-src", vm->id);
    GError *err = NULL;

    /* a new guest: a new log, and whatever the file held is gone */
    g_unlink(vm->serial);
    if (vm->good) {
        g_unlink(vm->good);
        g_clear_pointer(&vm->good, g_free);
    }
    vm->saved = FALSE;
    args = guest_args_config(accel(), vm->ram, vm->serial, &vm->cfg, &err);
    g_assert_no_error(err);
    vm->src = start(vm, args, name, NULL, NULL);
    guest_wait_tick(vm->serial, TICKS_BEFORE, BOOT_TIMEOUT_MS, NULL, &err);
    g_assert_no_error(err);
}

/*
 * Save the running VM (booting it first if there is none) and quit its
 * QEMU.  @stale: first copy its RAM file aside, STALE_AGE_MS before the
 * save, as an operator's earlier backup would be.
 */
static void vm_save(Vm *vm, gboolean stale)
{
    g_autoptr(GArray) ticks = NULL;
    g_autoptr(QemuProc) src = NULL;
    CprSample t;
    GError *err = NULL;
    guint at_copy = 0;

    if (!vm->src) {
        boot(vm);
    }
    src = g_steal_pointer(&vm->src);
    if (vm->stale) {
        g_unlink(vm->stale);
        g_clear_pointer(&vm->stale, g_free);
    }
    if (stale) {
        vm->stale = g_strdup_printf("%s.stale", vm->ram);
        guest_wait_tick(vm->serial, 0, 0, &at_copy, NULL);
        cp(vm->ram, vm->stale);
        g_usleep(STALE_AGE_MS * 1000);
    }
    cpr_sample_clear(&t);
    cpr_save(src, CPR_SETUP_SHARED, vm->uri, &t, &err);
    g_assert_no_error(err);
    g_free(vm->src_log);
    vm->src_log = qemu_proc_log(src);
    ticks = guest_ticks(vm->serial);
    g_assert_cmpuint(ticks->len, >, 0);
    vm->nticks = ticks->len;
    vm->last_tick = g_array_index(ticks, guint, ticks->len - 1);
    vm->at_save = stat_of(vm->ram);
    vm->saved = TRUE;
    g_test_message("%s saved at tick %u%s%.0u, pause %.2f ms", vm->id,
                   vm->last_tick, stale ? ", RAM copied at tick " : "",
                   at_copy, t.pause_us / 1e3);
}

/* @vm saved, its QEMU gone; with @stale, a stale copy of its RAM exists. */
static void vm_saved(Vm *vm, gboolean stale)
{
    if (vm->src || !vm->saved || (stale && !vm->stale)) {
        vm_save(vm, stale);
    }
}

/* ---- destination ---------------------------------------------------- */

typedef struct Dst {
    const GuestConfig *cfg;     /* NULL: the VM's own */
    const char *ram;            /* NULL: the VM's own file */
    const char *serial;         /* NULL: the VM's own log */
    const char *allow;          /* CPR_PMEM_ALLOW, or NULL */
} Dst;

/*
 * A destination QEMU for @vm with -incoming defer, cpr-reboot set up.
 * Without prealloc, starting it leaves @vm's RAM file as the save left
 * it (when it maps that file), before migrate_incoming.
 */
static QemuProc *dst_start(Vm *vm, const Dst *d, const char *name)
{
    const GuestConfig *cfg = d->cfg ? d->cfg : &vm->cfg;
    const char *ram = d->ram ? d->ram : vm->ram;
    gboolean own_ram = g_str_equal(ram, vm->ram) &&
                       g_file_test(ram, G_FILE_TEST_EXISTS);
    gboolean prealloc = cfg->ram_props && strstr(cfg->ram_props, "prealloc");
    struct stat before = own_ram ? stat_of(ram) : (struct stat){ 0 };
    g_auto(GStrv) args = NULL;
    g_autofree char *full = g_strdup_printf("%s-%s", vm->id, name);
    QemuProc *dst;
    GError *err = NULL;

    args = guest_args_config(accel(), ram, d->serial ? d->serial : vm->serial,
                             cfg, &err);
    g_assert_no_error(err);
    dst = start(vm, args, full, "defer", d->allow);
    cpr_setup(qemu_proc_qmp(dst), CPR_SETUP_SHARED, &err);
    g_assert_no_error(err);
    if (own_ram && !prealloc) {
        assert_file_as(ram, &before, "after a destination started");
    }
    return dst;
}

static void assert_status(QemuProc *p, const char *want)
{
    g_autofree char *status = qmp_query_status(qemu_proc_qmp(p), NULL);

    g_assert_cmpstr(status, ==, want);
}

static void assert_has(const char *text, const char *needle)
{
    if (!strstr(text, needle)) {
        g_error("\"%s\" not in:\n%s", needle, text);
    }
}

/*
 * migrate_incoming @uri must be refused with a message holding every
 * @needles, twice (the destination keeps waiting and takes another
 * command); returns the message.
 */
static char *refused(QemuProc *dst, const char *uri,
                     const char *const *needles)
{
    Qmp *qmp = qemu_proc_qmp(dst);
    GError *err = NULL, *again = NULL;
    char *msg;

    g_assert_false(qmp_migrate_incoming(qmp, uri, &err));
    g_assert_nonnull(err);
    msg = g_strdup(err->message);
    g_test_message("refused: %s", msg);
    assert_has(msg, "refusing to resume");
    for (; needles && *needles; needles++) {
        assert_has(msg, *needles);
    }
    assert_status(dst, "inmigrate");
    g_assert_false(qmp_migrate_incoming(qmp, uri, &again));
    g_assert_cmpstr(again->message, ==, msg);
    assert_status(dst, "inmigrate");
    g_assert_true(qemu_proc_running(dst));
    g_error_free(err);
    g_error_free(again);
    return msg;
}

/* The guest's ticks in @serial from line @from on: @first, @first+1, ... */
static gboolean ticks_go_on(const char *serial, guint from, guint first,
                            guint *got_first)
{
    g_autoptr(GArray) ticks = guest_ticks(serial);

    *got_first = ticks->len > from ? g_array_index(ticks, guint, from) : 0;
    if (ticks->len <= from) {
        return FALSE;
    }
    for (guint i = from; i < ticks->len; i++) {
        if (g_array_index(ticks, guint, i) != first + (i - from)) {
            return FALSE;
        }
    }
    return TRUE;
}

/* migrate_incoming @vm's image loads and the guest counts on. */
static void restored(Vm *vm, QemuProc *dst)
{
    Qmp *qmp = qemu_proc_qmp(dst);
    g_autoptr(JsonObject) resume = NULL;
    GError *err = NULL;
    guint first;

    qmp_migrate_incoming(qmp, vm->uri, &err);
    if (err) {
        qemu_proc_add_log_to_error(dst, &err);
    }
    g_assert_no_error(err);
    resume = qmp_wait_event(qmp, "RESUME", 60000, &err);
    g_assert_no_error(err);
    /* the incoming side's own "completed", before it saves again */
    for (int i = 0; i < 16; i++) {
        g_autoptr(JsonObject) ev = qmp_wait_event(qmp, "MIGRATION", 60000,
                                                  &err);
        JsonObject *data;

        g_assert_no_error(err);
        data = json_object_get_object_member(ev, "data");
        if (g_str_equal(json_object_get_string_member(data, "status"),
                        "completed")) {
            break;
        }
    }
    guest_wait_tick(vm->serial, vm->last_tick + TICKS_AFTER, TICK_TIMEOUT_MS,
                    NULL, &err);
    g_assert_no_error(err);
    assert_status(dst, "running");
    if (!ticks_go_on(vm->serial, vm->nticks, vm->last_tick + 1, &first)) {
        g_error("%s: after the save at tick %u the guest printed tick %u "
                "(or not in order)", vm->id, vm->last_tick, first);
    }
    g_test_message("%s restored: tick %u, then %u", vm->id, vm->last_tick,
                   first);
    g_assert_null(vm->src);
    vm->src = dst;
    vm->saved = FALSE;
}

/* A destination @d must refuse @vm's image for @needles; it leaves the RAM
 * file as it was. */
static void refuse_case(Vm *vm, const Dst *d, const char *name,
                        const char *const *needles)
{
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;

    vm_saved(vm, FALSE);
    dst = dst_start(vm, d, name);
    msg = refused(dst, vm->uri, needles);
    g_clear_pointer(&dst, qemu_proc_free);
    assert_file_as(vm->ram, &vm->at_save, "after the refusal");
}

/* ---- the tests --------------------------------------------------------- */

#define MEDIUM() Medium *m = medium((const char *)data)

/* The save-time warning, and cpr-pmem check --for=reboot on the image. */
static void test_save(gconstpointer data)
{
    MEDIUM();
    gboolean shm = m->base == TEST_BASE_SHM;
    const char *argv[] = { CPR_PMEM_TOOL, "check", "--for=reboot",
                           m->a.image, NULL };
    g_autofree char *out = NULL, *err_text = NULL;
    GError *err = NULL;
    int status;

    vm_save(&m->a, TRUE);
    if (shm) {
        g_autofree char *image = g_strdup_printf(
            "%s: the image is on volatile memory (tmpfs): a host reboot "
            "loses it", m->a.image);
        g_autofree char *ram = g_strdup_printf(
            "%s: the guest RAM of block", m->a.ram);

        assert_has(m->a.src_log, image);
        assert_has(m->a.src_log, ram);
        assert_has(m->a.src_log, "is on volatile memory (tmpfs): a host "
                   "reboot loses it");
    } else {
        g_assert_null(strstr(m->a.src_log, "volatile"));
    }

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                 &out, &err_text, &status, &err);
    g_assert_no_error(err);
    g_test_message("check --for=reboot: exit %d\n%s%s",
                   WEXITSTATUS(status), out, err_text);
    g_assert_true(WIFEXITED(status));
    if (shm) {
        g_autofree char *reason = g_strdup_printf(
            "%s: would not survive a host reboot: the image is on volatile "
            "memory (tmpfs)", m->a.image);

        g_assert_cmpint(WEXITSTATUS(status), ==, 1);
        assert_has(err_text, reason);
        assert_has(err_text, "would not survive a host reboot: the guest "
                   "RAM of block");
        assert_has(err_text, m->a.ram);
    } else {
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        assert_has(out, "survives a host reboot");
        assert_has(out, "guest RAM is in the page cache");
        g_assert_cmpstr(err_text, ==, "");
    }
}

static void test_extra_device(gconstpointer data)
{
    MEDIUM();
    const char *extra[] = { "-device", "virtio-rng-pci,id=rng0",
                            "-device", "virtio-rng-pci,id=rng1", NULL };
    GuestConfig cfg = m->a.cfg;
    const char *const needles[] = {
        m->a.image, "the command line differs from the saved VM's",
        "CPR_PMEM_ALLOW=cmdline", "+ -device virtio-rng-pci,id=rng1", NULL,
    };

    cfg.extra = extra;
    refuse_case(&m->a, &(Dst){ .cfg = &cfg }, "extra-device", needles);
}

static void test_missing_device(gconstpointer data)
{
    MEDIUM();
    GuestConfig cfg = m->a.cfg;
    const char *const needles[] = {
        m->a.image, "the command line differs from the saved VM's",
        "- -device virtio-rng-pci,id=rng0", NULL,
    };

    cfg.extra = NULL;
    refuse_case(&m->a, &(Dst){ .cfg = &cfg }, "missing-device", needles);
}

static void test_smp(gconstpointer data)
{
    MEDIUM();
    GuestConfig cfg = m->a.cfg;
    const char *const needles[] = {
        m->a.image, "the command line differs from the saved VM's",
        "+ -smp 2", NULL,
    };

    cfg.smp = "2";
    refuse_case(&m->a, &(Dst){ .cfg = &cfg }, "smp", needles);
}

/*
 * -m smaller than the file (QEMU refuses a larger one at start-up: "backing
 * store size ... is too small", before the transport could say anything).
 */
static void test_ram_size(gconstpointer data)
{
    MEDIUM();
    GuestConfig cfg = m->a.cfg;
    g_autofree char *block = g_strdup_printf("%s: RAM block ", m->a.ram);
    const char *const needles[] = {
        block, "is 128 MiB, the saved VM's was 256 MiB (resized?)",
        "CPR_PMEM_ALLOW=ram", "~ -m 256M -> 128M", NULL,
    };

    cfg.ram_size = "128M";
    refuse_case(&m->a, &(Dst){ .cfg = &cfg }, "ram-size", needles);

    /* larger: QEMU itself refuses to start, and leaves the file alone */
    {
        g_auto(GStrv) args = NULL;
        g_autofree char *dir = g_path_get_dirname(m->a.ram);
        QemuProcOpts opts = { .binary = test_env_qemu(), .dir = dir,
                              .name = "a-ram-size-larger" };
        QemuProc *p;
        GError *err = NULL;

        cfg.ram_size = "512M";
        args = guest_args_config(accel(), m->a.ram, m->a.serial, &cfg, &err);
        g_assert_no_error(err);
        opts.args = (const char *const *)args;
        p = qemu_proc_start_incoming(&opts, "defer", &err);
        g_assert_null(p);
        assert_has(err->message, "is too small for 'size' option");
        g_test_message("-m 512M: %s", strstr(err->message, "backing store"));
        g_error_free(err);
        assert_file_as(m->a.ram, &m->a.at_save, "after QEMU refused -m");
    }
}

static void test_machine(gconstpointer data)
{
    MEDIUM();
    GuestConfig cfg = m->a.cfg;
    const char *const needles[] = {
        m->a.image, "the command line differs from the saved VM's",
        "~ machine pc-q35-", "-> " OLD_MACHINE, NULL,
    };

    cfg.machine = OLD_MACHINE;
    refuse_case(&m->a, &(Dst){ .cfg = &cfg }, "machine", needles);
}

/* a's destination started on b's RAM file. */
static void test_other_vm_ram(gconstpointer data)
{
    MEDIUM();
    g_autofree char *that = g_strdup_printf(
        "%s: not the file the VM was saved with (that was %s,", m->b.ram,
        m->a.ram);
    const char *const needles[] = { that, NULL };

    vm_saved(&m->b, FALSE);
    refuse_case(&m->a, &(Dst){ .ram = m->b.ram }, "other-vm-ram", needles);
    assert_file_as(m->b.ram, &m->b.at_save, "after the refusal");
}

/* A copy from before the save, moved over the RAM file (a new inode). */
static void test_stale_new_inode(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->a;
    g_autofree char *orig = g_strdup_printf("%s.orig", vm->ram);
    g_autofree char *that = NULL;
    const char *needles[] = { NULL, NULL };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;

    vm_saved(vm, TRUE);
    that = g_strdup_printf("%s: not the file the VM was saved with (that "
                           "was %s, inode %lu", vm->ram, vm->ram,
                           (unsigned long)vm->at_save.st_ino);
    needles[0] = that;
    /* keep the right file under another name, to put it back */
    g_assert_cmpint(link(vm->ram, orig), ==, 0);
    mv(vm->stale, vm->ram);
    g_clear_pointer(&vm->stale, g_free);
    dst = dst_start(vm, &(Dst){ 0 }, "stale-new-inode");
    msg = refused(dst, vm->uri, needles);
    g_clear_pointer(&dst, qemu_proc_free);
    mv(orig, vm->ram);
    assert_file_as(vm->ram, &vm->at_save, "put back");
}

/* The RAM file gone; the destination QEMU creates it anew, all zero. */
static void test_recreated(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->a;
    g_autofree char *orig = g_strdup_printf("%s.orig", vm->ram);
    g_autofree char *that = NULL;
    const char *needles[] = { NULL, "sampled pages differ from the saved VM "
                              "and are all zero: the RAM looks newly created",
                              NULL };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;

    vm_saved(vm, FALSE);
    that = g_strdup_printf("%s: not the file the VM was saved with", vm->ram);
    needles[0] = that;
    mv(vm->ram, orig);
    dst = dst_start(vm, &(Dst){ 0 }, "recreated");
    g_assert_true(g_file_test(vm->ram, G_FILE_TEST_EXISTS));
    msg = refused(dst, vm->uri, needles);
    g_clear_pointer(&dst, qemu_proc_free);
    mv(orig, vm->ram);
    assert_file_as(vm->ram, &vm->at_save, "put back");
}

/*
 * The same RAM and command line: on the same destination, b's image is
 * refused first (b's RAM file, and b has no rng0), then a's loads.
 */
static void test_same(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->a;
    g_autofree char *that = NULL;
    const char *needles[] = { NULL, "+ -device virtio-rng-pci,id=rng0",
                              NULL };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;

    vm_saved(&m->b, FALSE);
    vm_saved(vm, FALSE);
    that = g_strdup_printf("%s: not the file the VM was saved with (that "
                           "was %s,", vm->ram, m->b.ram);
    needles[0] = that;
    /* the very command line: the source's process name, so its sockets */
    dst = dst_start(vm, &(Dst){ 0 }, "src");
    msg = refused(dst, m->b.uri, needles);
    assert_file_as(vm->ram, &vm->at_save, "after the refusal");
    restored(vm, g_steal_pointer(&dst));
}

/*
 * Only ignored options differ: the monitor's socket path (another
 * process name), -pidfile, -name, -D, -d, -trace, no -display, the
 * serial chardev's file; and prealloc=on, whose writes set the mtime on
 * ext4 (the PREALLOC flag excuses it).
 */
static void test_ignored_options(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->a;
    g_autofree char *dir = g_path_get_dirname(vm->ram);
    g_autofree char *pidfile = g_build_filename(dir, "a.pid", NULL);
    g_autofree char *dlog = g_build_filename(dir, "a-qemu-d.log", NULL);
    g_autofree char *serial = g_build_filename(dir, "a-serial-2.log", NULL);
    const char *extra[] = {
        a_extra[0], a_extra[1], "-name", "guest=a-restored,debug-threads=on",
        "-pidfile", pidfile, "-D", dlog, "-d", "guest_errors,unimp",
        "-trace", "transport_plugin_in_open*", NULL,
    };
    GuestConfig cfg = vm->cfg;
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;
    struct stat st;

    vm_saved(vm, FALSE);
    cfg.extra = extra;
    cfg.no_display = TRUE;
    cfg.ram_props = "prealloc=on";
    /* the serial port goes on in a log of its own: carry the count over */
    cp(vm->serial, serial);
    g_free(vm->serial);
    vm->serial = g_steal_pointer(&serial);
    dst = dst_start(vm, &(Dst){ .cfg = &cfg }, "ignored-options");
    st = stat_of(vm->ram);
    g_test_message("prealloc=on %s the RAM file's mtime",
                   same_mtime(&st, &vm->at_save) ? "kept" : "changed");
    if (m->base == TEST_BASE_DISK) {
        g_assert_false(same_mtime(&st, &vm->at_save));
    }
    restored(vm, g_steal_pointer(&dst));
    log = qemu_proc_log(vm->src);
    g_assert_null(strstr(log, "CPR_PMEM_ALLOW"));
    g_assert_true(g_file_test(pidfile, G_FILE_TEST_EXISTS));
}

/* CPR_PMEM_ALLOW=cmdline: an extra device, with the warning. */
static void test_allow_cmdline(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->a;
    const char *extra[] = { "-device", "virtio-rng-pci,id=rng0",
                            "-device", "virtio-rng-pci,id=rng1", NULL };
    GuestConfig cfg = vm->cfg;
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;
    g_autofree char *warning = NULL;

    vm_saved(vm, FALSE);
    cfg.extra = extra;
    dst = dst_start(vm, &(Dst){ .cfg = &cfg, .allow = "cmdline" },
                    "allow-cmdline");
    restored(vm, g_steal_pointer(&dst));
    log = qemu_proc_log(vm->src);
    warning = g_strdup_printf("CPR_PMEM_ALLOW=cmdline: resuming %s although "
                              "the command line differs: + -device "
                              "virtio-rng-pci,id=rng1", vm->image);
    assert_has(log, warning);
    g_test_message("warning: %s", warning);
}

/*
 * b's RAM file holds the stale copy, written over the same inode (cp),
 * the right contents kept aside in vm->good first.
 */
static void stale_in_place(Vm *vm)
{
    if (vm->good) {
        return;
    }
    vm_saved(vm, TRUE);
    vm->good = g_strdup_printf("%s.good", vm->ram);
    cp(vm->ram, vm->good);
    cp(vm->stale, vm->ram);
    g_assert_cmpuint(stat_of(vm->ram).st_ino, ==, vm->at_save.st_ino);
}

/* The right contents back over the file (its mtime is the copy's now). */
static void put_good_back(Vm *vm)
{
    cp(vm->good, vm->ram);
    g_unlink(vm->good);
    g_clear_pointer(&vm->good, g_free);
}

static void test_stale_in_place(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->b;
    g_autofree char *that = NULL;
    const char *needles[] = { NULL, "a stale copy, or written by another "
                              "process", NULL };
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;

    stale_in_place(vm);
    that = g_strdup_printf("%s: modified since the save (at ", vm->ram);
    needles[0] = that;
    dst = dst_start(vm, &(Dst){ 0 }, "stale-in-place");
    msg = refused(dst, vm->uri, needles);
}

/*
 * What the refusal prevents: the stale RAM loaded anyway
 * (CPR_PMEM_ALLOW=ram), the serial port in a log of its own.  The guest
 * must not go on from the save: it crashes, hangs or counts on from the
 * stale RAM's number.
 */
static void test_stale_loaded(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->b;
    g_autofree char *dir = g_path_get_dirname(vm->ram);
    g_autofree char *serial = g_build_filename(dir, "b-crash.log", NULL);
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GArray) ticks = NULL;
    GError *err = NULL;
    gint64 deadline;
    guint first = 0;
    const char *what;

    stale_in_place(vm);
    g_unlink(serial);
    dst = dst_start(vm, &(Dst){ .serial = serial, .allow = "ram" },
                    "stale-loaded");
    qmp_migrate_incoming(qemu_proc_qmp(dst), vm->uri, &err);
    g_assert_no_error(err);
    deadline = g_get_monotonic_time() + CRASH_WATCH_MS * 1000;
    while (qemu_proc_running(dst) && g_get_monotonic_time() < deadline) {
        g_usleep(50000);
    }
    g_file_get_contents(serial, &text, NULL, NULL);
    ticks = guest_ticks(serial);
    log = qemu_proc_log(dst);
    assert_has(log, "CPR_PMEM_ALLOW=ram: resuming");
    if (!qemu_proc_running(dst)) {
        what = text && strstr(text, "Kernel panic") ?
               "the guest kernel panicked (and QEMU exited: -no-reboot)" :
               "QEMU exited: the guest reset or shut down (-no-reboot)";
    } else if (!ticks->len) {
        what = "the guest printed no tick in 10 s (hung)";
    } else if (ticks_go_on(serial, 0, vm->last_tick + 1, &first)) {
        what = NULL;
    } else {
        what = "the guest counts from the stale RAM's number";
    }
    g_test_message("stale RAM loaded with CPR_PMEM_ALLOW=ram: %s (saved at "
                   "tick %u; first tick after: %u)", what ? what :
                   "the guest went on as if nothing happened", vm->last_tick,
                   first);
    if (text && *text) {
        gsize len = strlen(text);

        g_test_message("its serial log ends:\n%s",
                       len > 400 ? text + len - 400 : text);
    }
    g_assert_nonnull(what);
    g_clear_pointer(&dst, qemu_proc_free);
}

/*
 * CPR_PMEM_ALLOW=ram: the right contents written back over the file set
 * its mtime; every sampled page matches, the override excuses the mtime
 * (with its warning) and the guest goes on.
 */
static void test_allow_ram(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->b;
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *log = NULL;
    g_autofree char *warning = NULL;
    struct stat st;

    stale_in_place(vm);
    put_good_back(vm);
    st = stat_of(vm->ram);
    g_assert_cmpuint(st.st_ino, ==, vm->at_save.st_ino);
    g_assert_false(same_mtime(&st, &vm->at_save));
    dst = dst_start(vm, &(Dst){ .allow = "ram" }, "allow-ram");
    restored(vm, g_steal_pointer(&dst));
    log = qemu_proc_log(vm->src);
    warning = g_strdup_printf("CPR_PMEM_ALLOW=ram: resuming %s although "
                              "%s: modified since the save", vm->image,
                              vm->ram);
    assert_has(log, warning);
    g_assert_null(strstr(log, "sampled pages differ"));
    g_test_message("warning: %s", warning);
}

/*
 * The RAM file deleted (not kept aside): the destination QEMU creates a
 * new one, which ext4 gives the deleted file's inode number at once; its
 * birth time tells it apart.  b is gone after this, so it runs last.
 */
static void test_deleted(gconstpointer data)
{
    MEDIUM();
    Vm *vm = &m->b;
    const char *needles[] = { NULL, "sampled pages differ from the saved VM "
                              "and are all zero: the RAM looks newly created",
                              NULL };
    g_autofree char *that = NULL;
    g_autoptr(QemuProc) dst = NULL;
    g_autofree char *msg = NULL;
    struct stat st;

    vm_saved(vm, FALSE);
    g_assert_cmpint(g_unlink(vm->ram), ==, 0);
    dst = dst_start(vm, &(Dst){ 0 }, "deleted");
    st = stat_of(vm->ram);
    if (st.st_ino == vm->at_save.st_ino) {
        that = g_strdup_printf("%s: not the file the VM was saved with (a "
                               "file created at ", vm->ram);
        g_test_message("the new file has the deleted one's inode number "
                       "%lu", (unsigned long)st.st_ino);
    } else {
        that = g_strdup_printf("%s: not the file the VM was saved with "
                               "(that was %s, inode %lu", vm->ram, vm->ram,
                               (unsigned long)vm->at_save.st_ino);
    }
    needles[0] = that;
    msg = refused(dst, vm->uri, needles);
    g_clear_pointer(&dst, qemu_proc_free);
    vm->saved = FALSE;
}

/* ---- one process per test -------------------------------------------- */

/* What a test hands back of a VM: the rest follows from its paths. */
typedef struct VmState {
    gboolean saved, stale, good;
    guint last_tick, nticks;
    struct stat at_save;
    char serial[PATH_MAX];
} VmState;

static void state_of(const Vm *vm, VmState *st)
{
    memset(st, 0, sizeof(*st));
    st->saved = vm->saved;
    st->stale = vm->stale != NULL;
    st->good = vm->good != NULL;
    st->last_tick = vm->last_tick;
    st->nticks = vm->nticks;
    st->at_save = vm->at_save;
    g_assert_cmpuint(strlen(vm->serial), <, sizeof(st->serial));
    strcpy(st->serial, vm->serial);
}

static void adopt(Vm *vm, const VmState *st)
{
    vm->saved = st->saved;
    vm->last_tick = st->last_tick;
    vm->nticks = st->nticks;
    vm->at_save = st->at_save;
    g_free(vm->serial);
    vm->serial = g_strdup(st->serial);
    g_free(vm->stale);
    vm->stale = st->stale ? g_strdup_printf("%s.stale", vm->ram) : NULL;
    g_free(vm->good);
    vm->good = st->good ? g_strdup_printf("%s.good", vm->ram) : NULL;
}

/* After a failed test: nothing it left is trusted; the next test that
 * needs the VM boots and saves it anew (boot() starts a new serial log). */
static void forget(Vm *vm)
{
    g_autofree char *orig = g_strdup_printf("%s.orig", vm->ram);
    g_autofree char *good = g_strdup_printf("%s.good", vm->ram);
    g_autofree char *stale = g_strdup_printf("%s.stale", vm->ram);

    g_unlink(orig);
    g_unlink(good);
    g_unlink(stale);
    g_clear_pointer(&vm->good, g_free);
    g_clear_pointer(&vm->stale, g_free);
    vm->saved = FALSE;
}

typedef struct Case {
    const char *medium;
    GTestDataFunc fn;
} Case;

/* The test, in a child; a VM it left running is saved again (what the
 * next test's vm_saved() would do), and both VMs' state goes to @fd. */
G_NORETURN static void in_child(const Case *c, int fd)
{
    Medium *m = medium(c->medium);
    VmState st[2];

    /* Its TAP-shaped messages ("Bail out!") are not the parent's. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    c->fn(c->medium);
    if (m->a.src) {
        vm_save(&m->a, FALSE);
    }
    if (m->b.src) {
        vm_save(&m->b, FALSE);
    }
    state_of(&m->a, &st[0]);
    state_of(&m->b, &st[1]);
    if (write(fd, st, sizeof(st)) != (ssize_t)sizeof(st)) {
        _exit(3);
    }
    _exit(0);
}

static void run_case(gconstpointer data)
{
    const Case *c = data;
    Medium *m = medium(c->medium);     /* its directory: the parent's */
    VmState st[2];
    gsize got = 0;
    int fds[2], status;
    pid_t pid;

    g_assert_cmpint(pipe(fds), ==, 0);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(fds[0]);
        in_child(c, fds[1]);
    }
    close(fds[1]);
    while (got < sizeof(st)) {
        ssize_t n = read(fds[0], (char *)st + got, sizeof(st) - got);

        if (n <= 0) {
            break;
        }
        got += (gsize)n;
    }
    close(fds[0]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == sizeof(st)) {
        adopt(&m->a, &st[0]);
        adopt(&m->b, &st[1]);
        return;
    }
    forget(&m->a);
    forget(&m->b);
    if (WIFSIGNALED(status)) {
        g_test_fail_printf("%s: killed by signal %d (its output above)",
                           g_test_get_path(), WTERMSIG(status));
    } else {
        g_test_fail_printf("%s: exit status %d (its output above)",
                           g_test_get_path(), WEXITSTATUS(status));
    }
}

static void add(const char *medium_name, const char *name, GTestDataFunc fn)
{
    g_autofree char *path = g_strdup_printf("/binding/%s/%s", medium_name,
                                            name);
    Case *c = g_new(Case, 1);

    *c = (Case){ medium_name, fn };
    g_test_add_data_func_full(path, c, run_case, g_free);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        GTestDataFunc fn;
    } tests[] = {
        { "save/volatile-warning-and-check-for-reboot", test_save },
        { "refuse/extra-device", test_extra_device },
        { "refuse/missing-device", test_missing_device },
        { "refuse/smp", test_smp },
        { "refuse/ram-size", test_ram_size },
        { "refuse/machine", test_machine },
        { "refuse/other-vm-ram", test_other_vm_ram },
        { "refuse/stale-ram-new-inode", test_stale_new_inode },
        { "refuse/ram-recreated", test_recreated },
        { "refuse/stale-ram-in-place", test_stale_in_place },
        { "continue/same", test_same },
        { "continue/ignored-options-prealloc", test_ignored_options },
        { "override/cmdline", test_allow_cmdline },
        { "override/ram-stale-loaded-guest-fails", test_stale_loaded },
        { "override/ram", test_allow_ram },
        { "deleted/ram-recreated", test_deleted },
    };
    /* A failed test does not end the run (reachable until exit). */
    static char **args;
    int ret;

    args = g_new0(char *, (size_t)argc + 2);
    memcpy(args, argv, sizeof(char *) * (size_t)argc);
    args[argc++] = (char *)"--keep-going";
    argv = args;
    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(media); i++) {
        for (guint j = 0; j < G_N_ELEMENTS(tests); j++) {
            add(media[i].name, tests[j].name, tests[j].fn);
        }
    }
    ret = g_test_run();
    for (guint i = 0; i < G_N_ELEMENTS(media); i++) {
        if (media[i].dir) {
            vm_free(&media[i].a);
            vm_free(&media[i].b);
            test_env_rmtree(media[i].dir);
            g_free(media[i].dir);
        }
    }
    return ret;
}
