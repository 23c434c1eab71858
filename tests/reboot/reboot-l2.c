/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * reboot-l2: the reboot suite's driver inside L1 (tests/reboot/).
 *
 *   reboot-l2 save --round=N [--reboot-cmd=CMD] [--dry-run] [--image-dir=D]
 *       start --vms qtest VMs (the patched QEMU, RAM in DIR/vmI.ram on
 *       the fs-dax mount), write round N's RAM patterns and RTC CMOS
 *       bytes over qtest, then hand the VMs to cpr-host-update save.
 *   reboot-l2 restore --round=N [--times=PATH]
 *       listen on the VMs' qtest sockets, run cpr-host-update restore,
 *       then check round N's patterns and CMOS bytes in every VM and quit
 *       them.  Prints "@@verified NAME ram=ok cmos=ok" per VM.
 *   reboot-l2 zero-dax --devdax=/dev/daxX.Y [--ram=SIZE]
 *       zero the first SIZE bytes of the device DAX (a wiped region).
 *   reboot-l2 quit-all
 *       what a host's shutdown does to its QEMUs before the reboot (for
 *       the blackout bench's reboot command: "reboot-l2 quit-all &&
 *       kexec -e"): SIGTERM to every VM at once, wait until all are
 *       gone; prints "@@quit vmI MS" per VM, then "@@quit-done MS".
 *
 * --devdax=/dev/daxX.Y: the last VM's RAM is that device DAX
 * (mem-path=DEV,share=on,align=2M), not a file.
 * --stock-qemu=Q (save): the first VM runs Q, a QEMU without the transport
 * hook, which cpr-host-update saves through the exec: helper.  restore
 * asks every restored VM its QEMU version and whether it has the hook
 * ("qemu=VERSION hook=yes|no" on its @@verified line).
 * --scheme=file (save) saves through QEMU's own file: (cpr-host-update
 * --scheme=file), with --qemu naming a stock QEMU: the bench's baseline.
 * The VMs are started in their own session: they outlive this driver.
 */
#include "halt-vm.h"
#include "qmp.h"
#include "qtest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BULK_ADDR  0x1000000ULL     /* 16 MiB */
#define BULK_LEN   (64 * 1024)
#define CMOS_FIRST 0x40
#define CMOS_COUNT 16

static char *opt_dir = "/mnt/pmem/l2";
static char *opt_image_dir;     /* default: opt_dir */
static char *opt_devdax;        /* the last VM's RAM: this device DAX */
static char *opt_run = "/run/l2";
static char *opt_qemu;
static char *opt_stock_qemu;    /* vm0's QEMU (save) */
static char *opt_tool;
static char *opt_reboot_cmd;
static char *opt_ram = "128M";
static gint opt_vms = 2;
static gint opt_round = 1;
static gboolean opt_dry_run;
static char *opt_scheme;
static char *opt_times;

static const guint64 word_addrs[] = {
    0x1000, 0x7ffc, 0x200000, 0x4000000, 0x7fffffc,   /* last word of 128 MiB */
};

static guint32 word_value(guint seed, guint i)
{
    return (0xc0ffee00u + seed) ^ (i * 0x9e3779b9u);
}

static guint8 cmos_value(guint seed, guint i)
{
    return (0xa5 + seed * 7) ^ (i * 37);
}

static void fill_bulk(guint seed, guint8 *buf)
{
    GRand *r = g_rand_new_with_seed(seed);

    for (gsize i = 0; i < BULK_LEN; i++) {
        buf[i] = g_rand_int(r);
    }
    g_rand_free(r);
}

static guint vm_seed(guint i)
{
    return opt_round * 100 + i;
}

static char *vm_path(const char *dir, guint i, const char *ext)
{
    return g_strdup_printf("%s/vm%u.%s", dir, i, ext);
}

static gboolean write_patterns(Qtest *qt, guint seed, GError **errp)
{
    g_autofree guint8 *bulk = g_malloc(BULK_LEN);

    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        if (!qtest_writel(qt, word_addrs[i], word_value(seed, i), errp)) {
            return FALSE;
        }
    }
    fill_bulk(seed, bulk);
    if (!qtest_b64write(qt, BULK_ADDR, bulk, BULK_LEN, errp)) {
        return FALSE;
    }
    for (guint i = 0; i < CMOS_COUNT; i++) {
        halt_vm_cmos_write(qt, CMOS_FIRST + i, cmos_value(seed, i));
    }
    return TRUE;
}

/* Mismatching RAM locations (words + the bulk block) and CMOS bytes. */
static gboolean check_patterns(Qtest *qt, guint seed, guint *ram_bad,
                               guint *cmos_bad, GError **errp)
{
    g_autofree guint8 *want = g_malloc(BULK_LEN);
    g_autofree guint8 *got = g_malloc(BULK_LEN);

    *ram_bad = *cmos_bad = 0;
    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        guint32 v;

        if (!qtest_readl(qt, word_addrs[i], &v, errp)) {
            return FALSE;
        }
        if (v != word_value(seed, i)) {
            printf("RAM 0x%" G_GINT64_MODIFIER "x: 0x%08x, want 0x%08x\n",
                   word_addrs[i], v, word_value(seed, i));
            (*ram_bad)++;
        }
    }
    fill_bulk(seed, want);
    if (!qtest_b64read(qt, BULK_ADDR, got, BULK_LEN, errp)) {
        return FALSE;
    }
    if (memcmp(want, got, BULK_LEN)) {
        printf("RAM 0x%llx: %u bytes differ from the pattern\n",
               (unsigned long long)BULK_ADDR, BULK_LEN);
        (*ram_bad)++;
    }
    for (guint i = 0; i < CMOS_COUNT; i++) {
        guint8 v = halt_vm_cmos_read(qt, CMOS_FIRST + i);

        if (v != cmos_value(seed, i)) {
            printf("CMOS 0x%02x: 0x%02x, want 0x%02x\n", CMOS_FIRST + i, v,
                   cmos_value(seed, i));
            (*cmos_bad)++;
        }
    }
    return TRUE;
}

static void child_setsid(gpointer data)
{
    (void)data;
    setsid();
}

/* Start VM @i in its own session, logging to DIR/vmI.log. */
static gboolean start_vm(guint i, GSocket *listener, Qtest **qt, GError **errp)
{
    g_autofree char *ram = g_strdup_printf("vm%u.ram", i);
    g_auto(GStrv) base = halt_vm_args(opt_dir, ram, opt_ram);
    g_autofree char *qmp = vm_path(opt_run, i, "qmp");
    g_autofree char *qtest = vm_path(opt_run, i, "qtest");
    g_autofree char *log = vm_path(opt_dir, i, "log");
    g_autofree char *name = g_strdup_printf("vm%u", i);
    g_autofree char *qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", qmp);
    g_autofree char *qtest_arg = g_strdup_printf("unix:%s", qtest);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    GPid pid;
    gboolean ok;

    if (fd < 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: cannot open", log);
        return FALSE;
    }
    if (opt_devdax && i == (guint)opt_vms - 1) {
        for (int k = 0; base[k]; k++) {
            if (g_str_has_prefix(base[k], "memory-backend-file,")) {
                g_free(base[k]);
                base[k] = g_strdup_printf(
                    "memory-backend-file,id=ram0,size=%s,mem-path=%s,"
                    "share=on,align=2M", opt_ram, opt_devdax);
            }
        }
    }
    g_ptr_array_add(argv, opt_stock_qemu && i == 0 ? opt_stock_qemu : opt_qemu);
    for (int k = 0; base[k]; k++) {
        g_ptr_array_add(argv, base[k]);
    }
    for (const char *const *a = (const char *const[]){
             "-name", name, "-qmp", qmp_arg, "-qtest", qtest_arg,
             "-qtest-log", "/dev/null", "-msg", "timestamp=on", NULL };
         *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    g_ptr_array_add(argv, NULL);
    ok = g_spawn_async_with_fds(NULL, (char **)argv->pdata, NULL,
                                G_SPAWN_DEFAULT, child_setsid, NULL,
                                &pid, -1, fd, fd, errp);
    close(fd);
    if (!ok) {
        return FALSE;
    }
    {
        g_autofree char *pidfile = vm_path(opt_run, i, "pid");
        g_autofree char *text = g_strdup_printf("%d\n", (int)pid);

        g_file_set_contents(pidfile, text, -1, NULL);
    }
    *qt = qtest_accept(listener, 60000, errp);
    return *qt != NULL;
}

static int run_tool(const char *const *argv)
{
    g_autoptr(GError) err = NULL;
    int status;

    fflush(stdout);
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN,
                      NULL, NULL, NULL, NULL, &status, &err)) {
        printf("%s: %s\n", argv[0], err->message);
        return 2;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_save(void)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *manifest = g_build_filename(opt_dir, "manifest.json", NULL);
    gint64 t0 = g_get_monotonic_time();
    Qtest *qts[16] = { NULL };
    GError *err = NULL;
    int rc;

    g_ptr_array_add(argv, g_strdup(opt_tool));
    g_ptr_array_add(argv, g_strdup("save"));
    g_ptr_array_add(argv, g_strdup_printf("--image-dir=%s",
                                          opt_image_dir ? opt_image_dir
                                                        : opt_dir));
    g_ptr_array_add(argv, g_strdup_printf("--manifest=%s", manifest));
    if (opt_reboot_cmd) {
        g_ptr_array_add(argv, g_strdup_printf("--reboot-cmd=%s", opt_reboot_cmd));
    }
    if (opt_dry_run) {
        g_ptr_array_add(argv, g_strdup("--dry-run"));
    }
    if (opt_scheme) {
        g_ptr_array_add(argv, g_strdup_printf("--scheme=%s", opt_scheme));
    }
    for (gint i = 0; i < opt_vms; i++) {
        g_autofree char *qtest = vm_path(opt_run, i, "qtest");
        g_autoptr(GSocket) listener = NULL;
        guint ram_bad, cmos_bad;

        g_unlink(qtest);   /* a socket file from an earlier round */
        listener = qtest_listen(qtest, &err);

        if (!listener || !start_vm(i, listener, &qts[i], &err) ||
            !write_patterns(qts[i], vm_seed(i), &err) ||
            !check_patterns(qts[i], vm_seed(i), &ram_bad, &cmos_bad, &err)) {
            printf("vm%d: %s\n", i, err->message);
            return 1;
        }
        if (ram_bad || cmos_bad) {
            printf("vm%d: patterns do not read back before the save\n", i);
            return 1;
        }
        g_ptr_array_add(argv, vm_path(opt_run, i, "qmp"));
    }
    printf("@@phase l2-start-and-patterns-ms %.1f (%d VMs, round %d)\n",
           (g_get_monotonic_time() - t0) / 1e3, opt_vms, opt_round);
    g_ptr_array_add(argv, NULL);
    rc = run_tool((const char *const *)argv->pdata);
    /* Back here: a dry run, or the save failed and the VMs run on. */
    for (gint i = 0; i < opt_vms; i++) {
        qtest_free(qts[i]);
    }
    printf("cpr-host-update save: exit %d\n", rc);
    return rc;
}

/*
 * What VM @i runs: its QEMU's version (query-version, g_free) and whether
 * the migration object has the hook's x-preload-transports property (as
 * cpr-host-update tells them apart).  FALSE, @errp set, if QMP fails.
 */
static gboolean vm_qemu(guint i, char **version, gboolean *hook,
                        GError **errp)
{
    g_autofree char *qmp_path = vm_path(opt_run, i, "qmp");
    g_autoptr(Qmp) qmp = qmp_connect(qmp_path, 10000, errp);
    g_autoptr(JsonObject) args = qmp_args("{\"typename\": \"migration\"}");
    g_autoptr(JsonNode) ver = NULL, props = NULL;
    JsonObject *q;
    JsonArray *a;

    if (!qmp || !(ver = qmp_execute(qmp, "query-version", NULL, errp)) ||
        !(props = qmp_execute(qmp, "qom-list-properties", args, errp))) {
        return FALSE;
    }
    q = JSON_NODE_HOLDS_OBJECT(ver) ? json_node_get_object(ver) : NULL;
    q = q && json_object_has_member(q, "qemu")
        ? json_object_get_object_member(q, "qemu") : NULL;
    *version = q ? g_strdup_printf(
        "%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT ".%" G_GINT64_FORMAT,
        json_object_get_int_member_with_default(q, "major", -1),
        json_object_get_int_member_with_default(q, "minor", -1),
        json_object_get_int_member_with_default(q, "micro", -1))
        : g_strdup("?");
    *hook = FALSE;
    a = JSON_NODE_HOLDS_ARRAY(props) ? json_node_get_array(props) : NULL;
    for (guint k = 0; a && k < json_array_get_length(a); k++) {
        JsonObject *o = json_array_get_object_element(a, k);

        *hook |= o && !g_strcmp0(json_object_get_string_member_with_default(
                                     o, "name", ""), "x-preload-transports");
    }
    return TRUE;
}

static void quit_vm(guint i)
{
    g_autofree char *qmp_path = vm_path(opt_run, i, "qmp");
    g_autoptr(GError) err = NULL;
    g_autoptr(Qmp) qmp = qmp_connect(qmp_path, 10000, &err);

    if (!qmp || !qmp_quit(qmp, &err)) {
        printf("vm%u: quit: %s\n", i, err->message);
    }
}

static int cmd_restore(void)
{
    g_autofree char *manifest = g_build_filename(opt_dir, "manifest.json", NULL);
    const char *argv[] = { opt_tool, "restore", NULL, NULL, NULL };
    g_autofree char *marg = g_strdup_printf("--manifest=%s", manifest);
    g_autofree char *targ = opt_times ? g_strdup_printf("--times=%s", opt_times)
                                      : NULL;
    GSocket *listeners[16] = { NULL };
    GError *err = NULL;
    int rc, bad = 0;

    argv[2] = marg;
    argv[3] = targ;
    for (gint i = 0; i < opt_vms; i++) {
        g_autofree char *qtest = vm_path(opt_run, i, "qtest");

        g_unlink(qtest);
        listeners[i] = qtest_listen(qtest, &err);
        if (!listeners[i]) {
            printf("vm%d: %s\n", i, err->message);
            return 1;
        }
    }
    rc = run_tool(argv);
    printf("cpr-host-update restore: exit %d\n", rc);
    for (gint i = 0; i < opt_vms; i++) {
        g_autoptr(Qtest) qt = rc ? NULL : qtest_accept(listeners[i], 60000, &err);
        g_autofree char *version = NULL;
        guint ram_bad = 0, cmos_bad = 0;
        gboolean hook = FALSE;

        if (!rc && (!qt || !check_patterns(qt, vm_seed(i), &ram_bad,
                                           &cmos_bad, &err) ||
                    !vm_qemu(i, &version, &hook, &err))) {
            printf("vm%d: %s\n", i, err->message);
            g_clear_error(&err);
            bad++;
        } else if (!rc) {
            printf("@@verified vm%d round=%d ram=%s cmos=%s qemu=%s hook=%s\n",
                   i, opt_round, ram_bad ? "BAD" : "ok",
                   cmos_bad ? "BAD" : "ok", version, hook ? "yes" : "no");
            bad += ram_bad || cmos_bad;
        }
        quit_vm(i);
        g_object_unref(listeners[i]);
    }
    return rc ? rc : bad ? 1 : 0;
}

/* Zero the first --ram bytes of --devdax through a mapping (device DAX
 * has no write()). */
static int cmd_zero_dax(void)
{
    guint64 len = g_ascii_strtoull(opt_ram, NULL, 10) << 20;
    int fd = opt_devdax ? open(opt_devdax, O_RDWR | O_CLOEXEC) : -1;
    void *p;

    if (fd < 0 || !len) {
        printf("zero-dax: cannot open %s\n", opt_devdax ? opt_devdax : "-");
        return 1;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        printf("zero-dax: cannot map %s\n", opt_devdax);
        return 1;
    }
    memset(p, 0, len);
    msync(p, len, MS_SYNC);
    munmap(p, len);
    printf("@@zeroed %s %" G_GUINT64_FORMAT " MiB\n", opt_devdax, len >> 20);
    return 0;
}

/* SIGTERM every VM at once (as a host's shutdown does), wait for all. */
static int cmd_quit_all(void)
{
    int pidfd[16];
    gint64 t0, done[16];
    int left = 0;

    for (gint i = 0; i < opt_vms; i++) {
        g_autofree char *pidfile = vm_path(opt_run, i, "pid");
        g_autofree char *text = NULL;
        pid_t pid;

        pidfd[i] = -1;
        done[i] = 0;
        if (!g_file_get_contents(pidfile, &text, NULL, NULL) ||
            (pid = atoi(text)) <= 0) {
            continue;
        }
        pidfd[i] = syscall(SYS_pidfd_open, pid, 0);
    }
    t0 = g_get_monotonic_time();
    for (gint i = 0; i < opt_vms; i++) {
        if (pidfd[i] >= 0 &&
            syscall(SYS_pidfd_send_signal, pidfd[i], SIGTERM, NULL, 0) == 0) {
            left++;
        }
    }
    while (left > 0) {
        struct pollfd p[16];
        int n = 0, idx[16];

        for (gint i = 0; i < opt_vms; i++) {
            if (pidfd[i] >= 0 && !done[i]) {
                p[n] = (struct pollfd){ .fd = pidfd[i], .events = POLLIN };
                idx[n++] = i;
            }
        }
        if (poll(p, n, 30000) <= 0) {
            printf("quit-all: %d VM(s) still running after 30 s\n", left);
            return 1;
        }
        for (int k = 0; k < n; k++) {
            if (p[k].revents) {
                done[idx[k]] = g_get_monotonic_time();
                left--;
            }
        }
    }
    for (gint i = 0; i < opt_vms; i++) {
        if (pidfd[i] >= 0) {
            printf("@@quit vm%d %.2f\n", i, (done[i] - t0) / 1e3);
            close(pidfd[i]);
        }
    }
    {
        gint64 last = t0;

        for (gint i = 0; i < opt_vms; i++) {
            last = MAX(last, done[i]);
        }
        printf("@@quit-done %.2f\n", (last - t0) / 1e3);
    }
    return 0;
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        { "dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_dir, "RAM, images, logs", NULL },
        { "image-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_image_dir,
          "images (save; default: --dir)", NULL },
        { "run", 0, 0, G_OPTION_ARG_FILENAME, &opt_run, "sockets", NULL },
        { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_qemu, "patched QEMU", NULL },
        { "stock-qemu", 0, 0, G_OPTION_ARG_FILENAME, &opt_stock_qemu,
          "vm0's QEMU, without the hook (save)", NULL },
        { "tool", 0, 0, G_OPTION_ARG_FILENAME, &opt_tool, "cpr-host-update", NULL },
        { "reboot-cmd", 0, 0, G_OPTION_ARG_STRING, &opt_reboot_cmd, NULL, NULL },
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &opt_dry_run, NULL, NULL },
        { "vms", 0, 0, G_OPTION_ARG_INT, &opt_vms, NULL, NULL },
        { "round", 0, 0, G_OPTION_ARG_INT, &opt_round, NULL, NULL },
        { "ram", 0, 0, G_OPTION_ARG_STRING, &opt_ram, NULL, NULL },
        { "scheme", 0, 0, G_OPTION_ARG_STRING, &opt_scheme, NULL, NULL },
        { "times", 0, 0, G_OPTION_ARG_FILENAME, &opt_times, NULL, NULL },
        { "devdax", 0, 0, G_OPTION_ARG_FILENAME, &opt_devdax,
          "the last VM's RAM", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("save|restore");
    g_autoptr(GError) err = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc != 2 ||
        opt_vms < 1 || opt_vms > 16 ||
        (!g_str_equal(argv[1], "quit-all") &&
         !g_str_equal(argv[1], "zero-dax") && (!opt_qemu || !opt_tool))) {
        fprintf(stderr, "reboot-l2: %s\n", err ? err->message
                : "usage: reboot-l2 --qemu=Q --tool=T save|restore");
        return 2;
    }
    if (g_mkdir_with_parents(opt_dir, 0755) < 0 ||
        (opt_image_dir && g_mkdir_with_parents(opt_image_dir, 0755) < 0) ||
        g_mkdir_with_parents(opt_run, 0755) < 0) {
        perror("reboot-l2: mkdir");
        return 1;
    }
    if (g_str_equal(argv[1], "save")) {
        return cmd_save();
    }
    if (g_str_equal(argv[1], "restore")) {
        return cmd_restore();
    }
    if (g_str_equal(argv[1], "quit-all")) {
        return cmd_quit_all();
    }
    if (g_str_equal(argv[1], "zero-dax")) {
        return cmd_zero_dax();
    }
    fprintf(stderr, "reboot-l2: unknown command %s\n", argv[1]);
    return 2;
}
