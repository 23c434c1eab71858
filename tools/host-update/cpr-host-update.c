/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update: update a host's kernel under running QEMU VMs.
 *
 *   save:    for the VMs behind the given QMP sockets, set up cpr-reboot,
 *            make their missing images, save them all at once through pmem:
 *            (a QEMU without the transport hook: exec:cpr-pmem save, then
 *            cpr-pmem wait), verify every image with
 *            cpr-pmem, write a manifest next to the images, then run the
 *            reboot command (kexec -e by default).  Any failure before the
 *            reboot command resumes every VM and invalidates the images.
 *   restore: after the boot, start every VM of the manifest again with its
 *            command line, environment and working directory, restore it
 *            from its image and wait until it runs.
 *
 * See docs/host-update.md.  The QMP client is the test harness's
 * (tests/lib/qmp.c), compiled in unchanged.
 */
#include "host-files.h"
#include "host-media.h"
#include "line-socket.h"
#include "qemu-log.h"
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_FORMAT  "cpr-host-update-manifest"
#define MANIFEST_VERSION 1
#define MANIFEST_NAME    "cpr-host-update.json"
#define PRELOAD_PROP     "migration.x-preload-transports="
#define TRACE_EVENT      "vmstate_downtime_checkpoint"
#define DEFAULT_REBOOT   "kexec -e"

/* Exit codes: 0 done; 1 failed: every VM left as it was (save, including
 * a failed reboot command) or some VMs not restored (restore); 2 usage. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct {
    char *name;          /* for messages and the table */
    char *qmp_path;
    char *image;
    char *uri;           /* pmem:IMAGE; exec:: the save's, then the load's */
    gboolean exec;       /* no transport hook: the exec: helper */
    char *exec_id;       /* its save's --id */
    Qmp *qmp;
    pid_t pid;
    char *exe;           /* /proc/PID/exe, for an argv[0] without a path */
    GStrv argv;          /* /proc/PID/cmdline */
    GStrv env;           /* /proc/PID/environ */
    char *cwd;
    char *out_path;      /* stdout/stderr when regular files, else NULL */
    char *err_path;
    gboolean was_running;
    gboolean created;    /* this attempt made the image (cpr-pmem create) */
    /* save */
    gboolean sent, completed, failed;
    goffset log_off;     /* stderr size before the save, -1: no trace */
    gboolean trace_was_on;
    /* Each instant twice: epoch µs for the manifest and --times (they
     * span the reboot), CLOCK_MONOTONIC µs for every duration printed.
     * NAN until it happens. */
    double sent_at, stop_at, completed_at;
    double sent_mono, stop_mono, completed_mono;
    double commit_us;
    double vm_stop_us, device_save_us;   /* trace, as commit_us */
    double sync_us;      /* --scheme=file: fdatasync of image + directory */
    /* restore */
    double spawn_at, qmp_at, incoming_at, resume_at, running_at;
    double spawn_mono, qmp_mono, incoming_mono, resume_mono, running_mono;
    char *error;
} Vm;

static guint opt_timeout_s = 120;
/*
 * --scheme=file, for comparison measurements only (bench/blackout.c):
 * QEMU's own file: transport instead of pmem:, which stock QEMU can do.
 * No image is made or checked (file: images have no structure to check);
 * "durable" is an fdatasync() of each image and of its directory after
 * the save, timed; a failed attempt removes the completed images; the
 * restore does not preload a transport.
 */
static gboolean opt_file;
static gboolean opt_force_cold;  /* --force-cold-reboot */
/* --times=PATH (restore): every phase's times as JSON, for the bench. */
static char *opt_times;

/* A VM with no instant and no time yet (NAN: never printed). */
static Vm *vm_new(void)
{
    Vm *vm = g_new0(Vm, 1);

    vm->sent_at = vm->stop_at = vm->completed_at = NAN;
    vm->sent_mono = vm->stop_mono = vm->completed_mono = NAN;
    vm->commit_us = vm->vm_stop_us = vm->device_save_us = vm->sync_us = NAN;
    vm->spawn_at = vm->qmp_at = vm->incoming_at = NAN;
    vm->resume_at = vm->running_at = NAN;
    vm->spawn_mono = vm->qmp_mono = vm->incoming_mono = NAN;
    vm->resume_mono = vm->running_mono = NAN;
    return vm;
}

static void vm_free(Vm *vm)
{
    qmp_free(vm->qmp);
    g_free(vm->name);
    g_free(vm->qmp_path);
    g_free(vm->exe);
    g_free(vm->image);
    g_free(vm->uri);
    g_free(vm->exec_id);
    g_strfreev(vm->argv);
    g_strfreev(vm->env);
    g_free(vm->cwd);
    g_free(vm->out_path);
    g_free(vm->err_path);
    g_free(vm->error);
    g_free(vm);
}

static double now_us(void)
{
    return (double)g_get_real_time();
}

/* CLOCK_MONOTONIC (g_get_monotonic_time), µs: for durations. */
static double mono_us(void)
{
    return (double)g_get_monotonic_time();
}

/* Now, on both clocks. */
static void stamp(double *at, double *mono)
{
    *at = now_us();
    *mono = mono_us();
}

static void note(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void note(const char *fmt, ...)
{
    va_list ap;

    fputs("cpr-host-update: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void vm_fail(Vm *vm, const char *what, GError *err)
{
    vm->failed = TRUE;
    if (!vm->error) {
        vm->error = g_strdup_printf("%s: %s", what, err ? err->message : "?");
    }
    note("%s: %s", vm->name, vm->error);
}

/* QMP event timestamp in µs since the epoch (QEMU uses gettimeofday). */
static double event_us(JsonObject *ev)
{
    JsonObject *ts = json_object_get_object_member(ev, "timestamp");

    return ts ? json_object_get_int_member(ts, "seconds") * 1e6 +
                json_object_get_int_member(ts, "microseconds")
              : NAN;
}

/*
 * An event's instant on both clocks: QEMU stamps it with the wall clock
 * only, so its monotonic time is now's less how long ago it happened (a
 * wall clock step matters only if it falls in that short interval).
 */
static void stamp_event(JsonObject *ev, double *at, double *mono)
{
    double wall = now_us(), now = mono_us();

    *at = ev ? event_us(ev) : NAN;
    *mono = now - (wall - *at);
}

/* ---- what a running QEMU was started with ---- */

static GStrv read_nul_list(const char *path, GError **errp)
{
    g_autofree char *data = NULL;
    GPtrArray *a;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, errp)) {
        return NULL;
    }
    a = g_ptr_array_new();
    for (gsize i = 0; i < len; i += strlen(data + i) + 1) {
        g_ptr_array_add(a, g_strdup(data + i));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* Path of @fd of @pid if it is a regular file (a log), else NULL. */
static char *regular_fd_path(pid_t pid, int fd)
{
    g_autofree char *link = g_strdup_printf("/proc/%d/fd/%d", (int)pid, fd);
    g_autofree char *target = g_file_read_link(link, NULL);
    struct stat st;

    if (!target || target[0] != '/' || stat(link, &st) < 0 ||
        !S_ISREG(st.st_mode) || g_str_has_suffix(target, " (deleted)")) {
        return NULL;
    }
    return g_steal_pointer(&target);
}

/* Connect, find the peer's pid (SO_PEERCRED) and read its command line. */
static gboolean vm_connect(Vm *vm, GError **errp)
{
    gint64 deadline = deadline_after_ms(opt_timeout_s * 1000);
    g_autoptr(GSocket) sock = unix_socket_connect(vm->qmp_path, deadline, errp);
    g_autoptr(GCredentials) cred = NULL;
    g_autofree char *proc = NULL;

    if (!sock) {
        return FALSE;
    }
    cred = g_socket_get_credentials(sock, errp);
    if (!cred) {
        return FALSE;
    }
    vm->pid = g_credentials_get_unix_pid(cred, errp);
    if (vm->pid <= 0) {
        return FALSE;
    }
    vm->qmp = qmp_new(sock, opt_timeout_s * 1000, errp);
    if (!vm->qmp) {
        return FALSE;
    }
    qmp_set_timeout(vm->qmp, opt_timeout_s * 1000);
    proc = g_strdup_printf("/proc/%d", (int)vm->pid);
    {
        g_autofree char *cmdline = g_build_filename(proc, "cmdline", NULL);
        g_autofree char *environ_ = g_build_filename(proc, "environ", NULL);
        g_autofree char *cwd = g_build_filename(proc, "cwd", NULL);
        g_autofree char *exe = g_build_filename(proc, "exe", NULL);

        vm->argv = read_nul_list(cmdline, errp);
        if (!vm->argv || !vm->argv[0]) {
            return FALSE;
        }
        vm->env = read_nul_list(environ_, errp);
        if (!vm->env) {
            return FALSE;
        }
        vm->cwd = g_file_read_link(cwd, errp);
        if (!vm->cwd) {
            return FALSE;
        }
        vm->exe = g_file_read_link(exe, NULL);
        if (vm->exe && g_str_has_suffix(vm->exe, " (deleted)")) {
            vm->exe[strlen(vm->exe) - strlen(" (deleted)")] = '\0';
        }
    }
    vm->out_path = regular_fd_path(vm->pid, 1);
    vm->err_path = regular_fd_path(vm->pid, 2);
    return TRUE;
}

/* ---- cpr-pmem ---- */

static char *cpr_pmem_path;
static const char *cpr_pmem_for_reboot;   /* check's --for=..., or NULL */

static char *find_cpr_pmem(const char *self)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = g_path_get_dirname(exe ? exe : self);
    const char *env = g_getenv("CPR_PMEM");
    /* Installed side by side; in the build tree, tools/cpr-pmem/. */
    const char *rel[] = { "cpr-pmem", "../cpr-pmem/cpr-pmem", NULL };

    if (env && *env) {
        return g_strdup(env);
    }
    for (int i = 0; rel[i]; i++) {
        g_autofree char *p = g_build_filename(dir, rel[i], NULL);

        if (g_file_test(p, G_FILE_TEST_IS_REGULAR) &&
            g_file_test(p, G_FILE_TEST_IS_EXECUTABLE)) {
            return g_canonicalize_filename(p, NULL);
        }
    }
    return g_find_program_in_path("cpr-pmem");
}

/* Run cpr-pmem; its output goes to our stderr.  Returns the exit code. */
static int run_cpr_pmem(const char *cmd, const char *opt, const char *image,
                        char **out)
{
    const char *argv[] = { cpr_pmem_path, cmd, opt ? opt : image,
                           opt ? image : NULL, NULL };
    g_autoptr(GError) err = NULL;
    g_autofree char *sout = NULL, *serr = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                      &sout, &serr, &status, &err)) {
        note("%s: %s", cpr_pmem_path, err->message);
        return 2;
    }
    fputs(serr, stderr);
    if (out) {
        *out = g_strchomp(g_steal_pointer(&sout));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/*
 * The check this cpr-pmem has for what the reboot command does: "check
 * --for=kexec" (DRAM-backed pmem survives it) for a kexec, else "check
 * --for=reboot"; NULL if it has neither.
 */
static const char *cpr_pmem_check_for(gboolean kexec)
{
    const char *argv[] = { cpr_pmem_path, "--help", NULL };
    g_autofree char *sout = NULL;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, &sout, NULL, NULL, NULL) ||
        !strstr(sout, "--for=")) {
        return NULL;
    }
    return kexec && strstr(sout, "--for=kexec") ? "--for=kexec"
                                                : "--for=reboot";
}

/* ---- save ---- */

/* What "cpr-pmem create" makes: a new image's size (backend/placement.h). */
#define NEW_IMAGE_SIZE "--size=8M"

/*
 * A VM's first save into an image that does not exist yet would create
 * it inside the migrate command: allocate its room and fault it in
 * (4-5 ms on tmpfs, bench/cpr-latency --only pre-stop) before QEMU stops
 * that VM, while the VMs told first have stopped already and wait for
 * the last save.  Make it now, before any VM is told; an existing file
 * (an image, or something that is not one) is left to the save.
 */
static gboolean vm_prepare_image(Vm *vm, GError **errp)
{
    struct stat st;
    int rc;

    if (opt_file || lstat(vm->image, &st) == 0 || errno != ENOENT) {
        return TRUE;
    }
    rc = run_cpr_pmem("create", NEW_IMAGE_SIZE, vm->image, NULL);
    if (rc != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s create %s %s failed (exit %d)", cpr_pmem_path,
                    NEW_IMAGE_SIZE, vm->image, rc);
        return FALSE;
    }
    vm->created = TRUE;
    return TRUE;
}

static JsonObject *obj_args(const char *k, const char *v)
{
    JsonObject *o = json_object_new();

    json_object_set_string_member(o, k, v);
    return o;
}

/*
 * Whether this QEMU has the transport hook (so knows pmem:): its
 * migration object has the hook's x-preload-transports property.  One
 * QMP command; no migration is tried.
 */
static gboolean vm_has_hook(Vm *vm, GError **errp)
{
    g_autoptr(JsonObject) args = obj_args("typename", "migration");
    g_autoptr(JsonNode) ret = qmp_execute(vm->qmp, "qom-list-properties",
                                          g_steal_pointer(&args), errp);
    JsonArray *props;

    if (!ret) {
        return FALSE;
    }
    props = JSON_NODE_HOLDS_ARRAY(ret) ? json_node_get_array(ret) : NULL;
    for (guint i = 0; props && i < json_array_get_length(props); i++) {
        JsonObject *o = json_array_get_object_element(props, i);

        if (o && !g_strcmp0(json_object_get_string_member_with_default(
                                o, "name", ""), "x-preload-transports")) {
            return TRUE;
        }
    }
    return FALSE;
}

/*
 * The URI of @vm's save: pmem:IMAGE, or for a QEMU without the hook the
 * exec: helper with an id to wait for (docs/exec-helper.md).  Paths are
 * quoted for QEMU's /bin/sh -c.
 */
static gboolean vm_choose_uri(Vm *vm, guint index, GError **errp)
{
    g_autofree char *tool = NULL, *img = NULL;
    GError *err = NULL;

    if (opt_file) {
        vm->uri = g_strconcat("file:", vm->image, NULL);
        return TRUE;
    }
    if (vm_has_hook(vm, &err)) {
        vm->uri = g_strconcat("pmem:", vm->image, NULL);
        return TRUE;
    }
    if (err) {
        g_propagate_prefixed_error(errp, err, "qom-list-properties: ");
        return FALSE;
    }
    /* QEMU runs it from its own PATH and working directory. */
    tool = g_path_is_absolute(cpr_pmem_path) ? g_strdup(cpr_pmem_path) :
           g_find_program_in_path(cpr_pmem_path);
    if (!tool) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s: no absolute path for QEMU's exec: helper",
                    cpr_pmem_path);
        return FALSE;
    }
    g_free(cpr_pmem_path);
    cpr_pmem_path = g_steal_pointer(&tool);
    vm->exec = TRUE;
    vm->exec_id = g_strdup_printf("cpr-host-update-%d-%" G_GINT64_FORMAT
                                  "-%u", (int)getpid(), g_get_real_time(),
                                  index);
    tool = g_shell_quote(cpr_pmem_path);
    img = g_shell_quote(vm->image);
    vm->uri = g_strdup_printf("exec:%s save --id=%s %s", tool, vm->exec_id,
                              img);
    return TRUE;
}

/* After an exec: save completed: until the helper committed, then the
 * restore's URI. */
static gboolean vm_exec_committed(Vm *vm, GError **errp)
{
    g_autofree char *id = g_strconcat("--id=", vm->exec_id, NULL);
    g_autofree char *tool = g_shell_quote(cpr_pmem_path);
    g_autofree char *img = g_shell_quote(vm->image);
    int rc = run_cpr_pmem("wait", id, vm->image, NULL);

    if (rc != 0) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s wait %s %s: the exec: save was not committed (exit "
                    "%d)", cpr_pmem_path, id, vm->image, rc);
        return FALSE;
    }
    g_free(vm->uri);
    vm->uri = g_strdup_printf("exec:%s load %s", tool, img);
    return TRUE;
}

/* What both sides of a cpr-reboot need: RAM stays in its shared file. */
static gboolean set_cpr_reboot(Qmp *qmp, GError **errp)
{
    return qmp_set_capability(qmp, "x-ignore-shared", TRUE, errp) &&
           qmp_set_capability(qmp, "events", TRUE, errp) &&
           qmp_set_parameter(qmp, "mode", "cpr-reboot", errp);
}

/* Enable the downtime trace point if QEMU's stderr is a log we can read. */
static void trace_start(Vm *vm)
{
    g_autoptr(JsonObject) q = obj_args("name", TRACE_EVENT);
    g_autoptr(JsonObject) set = obj_args("name", TRACE_EVENT);
    g_autoptr(JsonNode) ret = NULL;
    struct stat st;

    vm->log_off = -1;
    if (!vm->err_path || stat(vm->err_path, &st) < 0) {
        return;
    }
    ret = qmp_execute(vm->qmp, "trace-event-get-state", q, NULL);
    if (!ret || !JSON_NODE_HOLDS_ARRAY(ret) ||
        json_array_get_length(json_node_get_array(ret)) != 1) {
        return;
    }
    vm->trace_was_on = g_str_equal(json_object_get_string_member_with_default(
        json_array_get_object_element(json_node_get_array(ret), 0), "state",
        ""), "enabled");
    json_object_set_boolean_member(set, "enable", TRUE);
    if (qmp_run(vm->qmp, "trace-event-set-state", set, NULL)) {
        vm->log_off = st.st_size;
    }
}

/* Put the trace point back as it was before the save. */
static void trace_stop(Vm *vm)
{
    g_autoptr(JsonObject) set = obj_args("name", TRACE_EVENT);

    if (vm->log_off >= 0 && !vm->trace_was_on) {
        json_object_set_boolean_member(set, "enable", FALSE);
        qmp_run(vm->qmp, "trace-event-set-state", set, NULL);
    }
}

/* Commit time from the trace lines the save added (needs -msg timestamp=on). */
static void trace_finish(Vm *vm)
{
    g_autofree char *log = NULL;
    gsize len;

    vm->commit_us = vm->vm_stop_us = vm->device_save_us = NAN;
    if (vm->log_off < 0) {
        return;
    }
    trace_stop(vm);
    if (g_file_get_contents(vm->err_path, &log, &len, NULL) &&
        (gsize)vm->log_off <= len) {
        qemu_log_phases(log + vm->log_off, &vm->vm_stop_us,
                        &vm->device_save_us, &vm->commit_us);
    }
}

static gboolean vm_setup(Vm *vm, GError **errp)
{
    g_autofree char *status = qmp_query_status(vm->qmp, errp);

    if (!status) {
        return FALSE;
    }
    vm->was_running = g_str_equal(status, "running");
    if (!vm->was_running && !g_str_equal(status, "paused")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL,
                    "VM is '%s', not running or paused", status);
        return FALSE;
    }
    return set_cpr_reboot(vm->qmp, errp);
}

static const char *event_status(JsonObject *ev)
{
    JsonObject *data = json_object_get_object_member(ev, "data");

    return data ? json_object_get_string_member_with_default(data, "status", "")
                : "";
}

/* Wait for the migration's end; STOP and MIGRATION events carry the times. */
static void vm_wait_saved(Vm *vm)
{
    g_autoptr(GError) err = NULL;

    for (int i = 0; i < 32 && !vm->completed && !vm->failed; i++) {
        g_autoptr(JsonObject) ev = qmp_wait_event(vm->qmp, "MIGRATION",
                                                  opt_timeout_s * 1000, &err);
        const char *st;

        if (!ev) {
            vm_fail(vm, "waiting for the save", err);
            return;
        }
        st = event_status(ev);
        if (g_str_equal(st, "completed")) {
            vm->completed = TRUE;
            stamp_event(ev, &vm->completed_at, &vm->completed_mono);
        } else if (g_str_equal(st, "failed") || g_str_equal(st, "cancelled")) {
            g_autoptr(JsonNode) info = qmp_execute(vm->qmp, "query-migrate",
                                                   NULL, NULL);
            const char *desc = info ? json_object_get_string_member_with_default(
                json_node_get_object(info), "error-desc", st) : st;

            vm->failed = TRUE;
            vm->error = g_strdup_printf("save %s: %s", st, desc);
            note("%s: %s", vm->name, vm->error);
        }
    }
    if (vm->completed) {
        g_autoptr(JsonObject) stop = qmp_wait_event(vm->qmp, "STOP", 1000, NULL);

        stamp_event(stop, &vm->stop_at, &vm->stop_mono);
        trace_finish(vm);
    }
}

/*
 * Put every VM back as it was: cancel what is still saving, resume what
 * was running, and make every image of this attempt unloadable so that a
 * later boot never restores a stale state under a VM that went on running.
 */
static void rollback(GPtrArray *vms, gboolean invalidate)
{
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(GError) err = NULL;
        g_autofree char *status = NULL;

        if (!vm->qmp) {
            continue;
        }
        if (!vm->completed) {
            trace_stop(vm);
        }
        if (vm->sent && !vm->completed) {
            qmp_run(vm->qmp, "migrate_cancel", NULL, NULL);
            for (int t = 0; t < 100; t++) {
                g_autoptr(JsonNode) info = qmp_execute(vm->qmp, "query-migrate",
                                                       NULL, NULL);
                const char *st = info ? json_object_get_string_member_with_default(
                    json_node_get_object(info), "status", "none") : "none";

                if (!g_strv_contains((const char *const[]){ "setup", "active",
                        "cancelling", "device", "wait-unplug", NULL }, st)) {
                    break;
                }
                g_usleep(20000);
            }
        }
        /* "completed" comes a moment before the run state leaves
         * finish-migrate, and cont is refused until it has. */
        for (int t = 0; t < 500; t++) {
            g_free(status);
            status = qmp_query_status(vm->qmp, &err);
            if (!status || !g_str_equal(status, "finish-migrate")) {
                break;
            }
            g_usleep(10000);
        }
        if (vm->was_running && status && !g_str_equal(status, "running") &&
            !qmp_run(vm->qmp, "cont", NULL, &err)) {
            note("%s: cannot resume: %s", vm->name, err->message);
        } else if (status) {
            note("%s: left %s", vm->name,
                 vm->was_running ? "running" : "paused");
        } else {
            note("%s: %s", vm->name, err->message);
        }
    }
    for (guint i = 0; invalidate && i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->completed && opt_file) {
            host_unlink_type(vm->image, S_IFREG);  /* anyone would load it */
        } else if (vm->completed &&
                   g_file_test(vm->image, G_FILE_TEST_EXISTS)) {
            run_cpr_pmem("invalidate", NULL, vm->image, NULL);
        } else if (vm->created && !vm->completed) {
            /* made by this attempt, and nothing committed into it */
            host_unlink_type(vm->image, S_IFREG);
        }
    }
}

static void add_strv(JsonBuilder *b, const char *name, GStrv v)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (int i = 0; v && v[i]; i++) {
        json_builder_add_string_value(b, v[i]);
    }
    json_builder_end_array(b);
}

static void add_str(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    if (v) {
        json_builder_add_string_value(b, v);
    } else {
        json_builder_add_null_value(b);
    }
}

static void add_num(JsonBuilder *b, const char *name, double v)
{
    json_builder_set_member_name(b, name);
    if (isnan(v)) {
        json_builder_add_null_value(b);
    } else {
        json_builder_add_double_value(b, v);
    }
}

/* This boot's identity: a restore tells a reboot from none by it. */
static char *boot_id(void)
{
    char *id = NULL;

    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &id, NULL, NULL)) {
        return g_strdup("");
    }
    return g_strstrip(id);
}

static char *manifest_text(GPtrArray *vms, double reboot_at, const char *cmd)
{
    g_autofree char *boot = boot_id();
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    struct utsname u;

    uname(&u);
    json_builder_begin_object(b);
    add_str(b, "format", MANIFEST_FORMAT);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, MANIFEST_VERSION);
    add_str(b, "kernel-before", u.release);
    add_str(b, "boot-id-before", boot);
    add_str(b, "reboot-command", cmd);
    add_num(b, "reboot-at-us", reboot_at);
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        json_builder_begin_object(b);
        add_str(b, "name", vm->name);
        add_str(b, "qmp", vm->qmp_path);
        add_str(b, "image", vm->image);
        add_str(b, "uri", vm->uri);
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, vm->pid);
        json_builder_set_member_name(b, "was-running");
        json_builder_add_boolean_value(b, vm->was_running);
        add_str(b, "exe", vm->exe);
        add_strv(b, "argv", vm->argv);
        add_strv(b, "env", vm->env);
        add_str(b, "cwd", vm->cwd);
        add_str(b, "stdout", vm->out_path);
        add_str(b, "stderr", vm->err_path);
        add_num(b, "pre-stop-us", vm->stop_mono - vm->sent_mono);
        add_num(b, "pause-us", vm->completed_mono - vm->stop_mono);
        add_num(b, "commit-us", vm->commit_us);
        add_num(b, "vm-stop-us", vm->vm_stop_us);
        add_num(b, "device-save-us", vm->device_save_us);
        add_num(b, "sync-us", vm->sync_us);
        add_num(b, "sent-at-us", vm->sent_at);
        add_num(b, "stop-at-us", vm->stop_at);
        add_num(b, "completed-at-us", vm->completed_at);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    return json_generator_to_data(gen, NULL);
}

static void fmt_ms(char *buf, size_t size, double us)
{
    if (isnan(us)) {
        snprintf(buf, size, "-");
    } else {
        snprintf(buf, size, "%.2f", us / 1e3);
    }
}

/* --scheme=file: make the image and its name durable, timed. */
static gboolean sync_image(Vm *vm, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(vm->image);
    double t0 = mono_us();
    int fd = open(vm->image, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    gboolean ok = fd >= 0 && dfd >= 0 && fstat(fd, &st) == 0 &&
                  (S_ISREG(st.st_mode) || (errno = EINVAL, FALSE)) &&
                  fdatasync(fd) == 0 && fsync(dfd) == 0;
    int e = errno;

    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (!ok) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s",
                    vm->image, g_strerror(e));
        return FALSE;
    }
    vm->sync_us = mono_us() - t0;
    return TRUE;
}

static void print_save_table(GPtrArray *vms)
{
    char a[32], b[32], c[32], d[32];

    printf("%-16s %12s %12s %12s%s\n", "VM", "pre-stop ms", "pause ms",
           "commit ms", opt_file ? "      sync ms" : "");
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        fmt_ms(a, sizeof(a), vm->stop_mono - vm->sent_mono);
        fmt_ms(b, sizeof(b), vm->completed_mono - vm->stop_mono);
        fmt_ms(c, sizeof(c), vm->commit_us);
        fmt_ms(d, sizeof(d), vm->sync_us);
        if (opt_file) {
            printf("%-16s %12s %12s %12s %12s\n", vm->name, a, b, c, d);
        } else {
            printf("%-16s %12s %12s %12s\n", vm->name, a, b, c);
        }
    }
    fflush(stdout);
}

static char *default_name(const char *qmp_path)
{
    g_autofree char *base = g_path_get_basename(qmp_path);
    char *dot = strrchr(base, '.');

    if (dot && dot != base) {
        *dot = '\0';
    }
    return g_steal_pointer(&base);
}

static int cmd_save(int argc, char **argv, const char *manifest,
                    const char *image_dir, const char *reboot_cmd,
                    gboolean dry_run)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_free);
    g_autofree char *manifest_path = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;
    gboolean ok = TRUE;
    double reboot_at;
    gboolean kexec;
    int status;

    if (argc < 1) {
        note("save: no QMP socket given");
        return EXIT_USAGE;
    }
    /* ---- before touching any VM: everything that can be known now ---- */
    for (int i = 0; i < argc; i++) {
        Vm *vm = vm_new();
        char *eq = strchr(argv[i], '=');

        g_ptr_array_add(vms, vm);
        vm->qmp_path = eq ? g_strndup(argv[i], eq - argv[i]) : g_strdup(argv[i]);
        vm->name = default_name(vm->qmp_path);
        if (eq) {
            vm->image = g_strdup(eq + 1);
        } else if (image_dir) {
            g_autofree char *f = g_strconcat(vm->name, ".cpr", NULL);

            vm->image = g_build_filename(image_dir, f, NULL);
        } else {
            note("%s: no image: give SOCKET=IMAGE or --image-dir", vm->qmp_path);
            return EXIT_USAGE;
        }
        vm->log_off = -1;
    }
    if (manifest) {
        manifest_path = g_strdup(manifest);
    } else {
        g_autofree char *dir = g_path_get_dirname(((Vm *)vms->pdata[0])->image);

        manifest_path = g_build_filename(dir, MANIFEST_NAME, NULL);
    }
    if (!cpr_pmem_path && !opt_file) {
        note("cpr-pmem not found (set CPR_PMEM or put it in PATH)");
        return EXIT_USAGE;
    }
    kexec = host_cmd_is_kexec(reboot_cmd);
    cpr_pmem_for_reboot = opt_file ? NULL
                          : cpr_pmem_check_for(kexec || opt_force_cold);
    {
        g_autofree char *mdir = g_path_get_dirname(manifest_path);

        if (access(mdir, W_OK) < 0) {
            note("%s: cannot write the manifest there: %s", mdir,
                 g_strerror(errno));
            return EXIT_FAILED;
        }
        /* restore would refuse it after the reboot: say so now */
        if (!host_dir_trusted(manifest_path, &err)) {
            note("%s; no VM was touched", err->message);
            return EXIT_FAILED;
        }
    }
    if (!dry_run && g_str_equal(reboot_cmd, DEFAULT_REBOOT)) {
        g_autofree char *loaded = NULL;

        if (!g_file_get_contents("/sys/kernel/kexec_loaded", &loaded, NULL,
                                 NULL) || loaded[0] != '1') {
            note("no kexec kernel is loaded (kexec -l KERNEL ...; "
                 "/sys/kernel/kexec_loaded), or give --reboot-cmd; no VM was "
                 "touched");
            return EXIT_FAILED;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autofree char *dir = g_path_get_dirname(vm->image);

        if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
            note("%s: image directory %s does not exist; no VM was touched",
                 vm->name, dir);
            return EXIT_FAILED;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_connect(vm, &err) || !vm_choose_uri(vm, i, &err)) {
            note("%s: %s: %s; no VM was touched", vm->name, vm->qmp_path,
                 err->message);
            return EXIT_FAILED;
        }
        if (vm->exec) {
            note("%s: QEMU has no pmem: transport: saving through the exec: "
                 "helper", vm->name);
        }
    }
    /* DRAM-backed pmem (memmap=): a cold reboot would lose the VM. */
    for (guint i = 0; i < vms->len && !kexec; i++) {
        Vm *vm = vms->pdata[i];
        g_autofree char *what = host_kexec_only_file(vm->pid, vm->image);

        if (what && opt_force_cold) {
            note("%s: %s is on DRAM-backed pmem (e820, memmap=), which "
                 "'%s' loses: going ahead (--force-cold-reboot)", vm->name,
                 what, reboot_cmd);
        } else if (what) {
            note("%s: %s is on DRAM-backed pmem (e820, memmap=): it survives "
                 "a kexec only, and '%s' is not one; use kexec, or "
                 "--force-cold-reboot to lose it; no VM was touched",
                 vm->name, what, reboot_cmd);
            return EXIT_FAILED;
        }
    }

    /* ---- set up, then every migrate before any reply ---- */
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_setup(vm, &err)) {
            vm_fail(vm, "setup", err);
            g_clear_error(&err);
            ok = FALSE;
        }
        trace_start(vm);
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_prepare_image(vm, &err)) {
            vm_fail(vm, "image", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonObject) args = obj_args("uri", vm->uri);

        stamp(&vm->sent_at, &vm->sent_mono);
        if (qmp_send(vm->qmp, "migrate", args, &err)) {
            vm->sent = TRUE;
        } else {
            vm_fail(vm, "migrate", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonNode) ret = NULL;

        if (!vm->sent) {
            continue;
        }
        ret = qmp_receive(vm->qmp, "migrate", &err);
        if (!ret) {
            vm->sent = FALSE;   /* QEMU refused it: nothing started */
            vm_fail(vm, "migrate", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->sent) {
            vm_wait_saved(vm);
            ok = ok && vm->completed;
        }
    }
    for (guint i = 0; i < vms->len && ok; i++) {
        Vm *vm = vms->pdata[i];

        if (vm->exec && !vm_exec_committed(vm, &err)) {
            vm_fail(vm, "cpr-pmem wait", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    if (ok) {
        print_save_table(vms);
    }

    /* ---- verify every image before anything irreversible ---- */
    for (guint i = 0; i < vms->len && ok && opt_file; i++) {
        if (!sync_image(vms->pdata[i], &err)) {
            vm_fail(vms->pdata[i], "fdatasync", err);
            g_clear_error(&err);
            ok = FALSE;
        }
    }
    for (guint i = 0; i < vms->len && ok && !opt_file; i++) {
        Vm *vm = vms->pdata[i];
        int rc = run_cpr_pmem("check", cpr_pmem_for_reboot, vm->image, NULL);

        if (rc != 0) {
            vm->error = g_strdup_printf("%s check%s%s failed (exit %d)",
                                        cpr_pmem_path,
                                        cpr_pmem_for_reboot ? " " : "",
                                        cpr_pmem_for_reboot ? cpr_pmem_for_reboot
                                                            : "", rc);
            note("%s: %s", vm->name, vm->error);
            ok = FALSE;
        } else {
            note("%s: %s verified%s", vm->name, vm->image,
                 !cpr_pmem_for_reboot ? ""
                 : g_str_equal(cpr_pmem_for_reboot, "--for=kexec")
                 ? " for a kexec" : " for a reboot");
        }
    }
    if (!ok) {
        note("save failed: resuming every VM, invalidating this attempt's images");
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }

    if (dry_run) {
        g_autofree char *dry = g_strconcat(manifest_path, ".dry-run", NULL);

        text = manifest_text(vms, NAN, reboot_cmd);
        if (!host_write_durably(dry, text, &err)) {
            note("%s", err->message);
        }
        note("dry run: not running '%s'; manifest in %s; resuming every VM",
             reboot_cmd, dry);
        rollback(vms, TRUE);
        return EXIT_OK;
    }

    reboot_at = now_us();
    text = manifest_text(vms, reboot_at, reboot_cmd);
    if (!host_write_durably(manifest_path, text, &err)) {
        note("%s", err->message);
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }
    note("manifest %s written; running: %s", manifest_path, reboot_cmd);
    fflush(stdout);
    fflush(stderr);
    signal(SIGPIPE, SIG_DFL);
    status = system(reboot_cmd);
    signal(SIGPIPE, SIG_IGN);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("reboot command failed (status 0x%x): removing the manifest, "
             "resuming every VM", status);
        host_unlink_type(manifest_path, S_IFREG);
        rollback(vms, TRUE);
        return EXIT_FAILED;
    }
    note("reboot command returned; the VMs stay paused for the reboot");
    return EXIT_OK;
}

/* ---- restore ---- */

static GStrv strv_member(JsonObject *o, const char *name)
{
    JsonArray *a = json_object_has_member(o, name)
                   ? json_object_get_array_member(o, name) : NULL;
    GPtrArray *v = g_ptr_array_new();

    for (guint i = 0; a && i < json_array_get_length(a); i++) {
        g_ptr_array_add(v, g_strdup(json_array_get_string_element(a, i)));
    }
    g_ptr_array_add(v, NULL);
    return (GStrv)g_ptr_array_free(v, FALSE);
}

static char *str_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? g_strdup(json_node_get_string(n))
                                         : NULL;
}

static double num_member(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_double(n) : NAN;
}

/* The saved command line less any -incoming, plus -incoming defer and the
 * transport preload (so that the restore does not pay for loading it). */
static GStrv restore_argv(GStrv argv, const char *uri)
{
    GPtrArray *a = g_ptr_array_new();
    /* stock QEMU (file:, --scheme=file) has no such property */
    gboolean preload = !g_str_has_prefix(uri, "pmem:");

    for (int i = 0; argv[i]; i++) {
        if (g_str_equal(argv[i], "-incoming") && argv[i + 1]) {
            i++;
            continue;
        }
        preload = preload || g_str_has_prefix(argv[i], PRELOAD_PROP);
        g_ptr_array_add(a, g_strdup(argv[i]));
    }
    g_ptr_array_add(a, g_strdup("-incoming"));
    g_ptr_array_add(a, g_strdup("defer"));
    if (!preload) {
        g_ptr_array_add(a, g_strdup("-global"));
        g_ptr_array_add(a, g_strdup(PRELOAD_PROP "pmem"));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* The binary: argv[0] if it is a path, else what the old process ran. */
static char *exec_path(Vm *vm)
{
    if (strchr(vm->argv[0], '/')) {
        return g_strdup(vm->argv[0]);
    }
    if (vm->exe) {
        return g_strdup(vm->exe);
    }
    return g_find_program_in_path(vm->argv[0]);
}

/* Start QEMU in its own session; it outlives this tool. */
static gboolean vm_spawn(Vm *vm, GError **errp)
{
    g_auto(GStrv) args = restore_argv(vm->argv, vm->uri);
    g_autofree char *bin = exec_path(vm);
    int out = host_open_log(vm->out_path);
    int errfd = vm->err_path && g_strcmp0(vm->err_path, vm->out_path)
                ? host_open_log(vm->err_path) : -1;
    pid_t pid;

    if (!bin) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s: not found", vm->argv[0]);
        close(out);
        return FALSE;
    }
    host_unlink_type(vm->qmp_path, S_IFSOCK);   /* the old QEMU's */
    stamp(&vm->spawn_at, &vm->spawn_mono);
    pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);

        setsid();
        signal(SIGPIPE, SIG_DFL);
        dup2(null, 0);
        dup2(out, 1);
        dup2(errfd >= 0 ? errfd : out, 2);
        if (vm->cwd && chdir(vm->cwd) < 0) {
            _exit(126);
        }
        execve(bin, args, vm->env);
        _exit(127);
    }
    close(out);
    if (errfd >= 0) {
        close(errfd);
    }
    if (pid < 0) {
        g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(errno),
                    "fork: %s", g_strerror(errno));
        return FALSE;
    }
    vm->pid = pid;
    return TRUE;
}

/* Connect to the new QEMU's QMP socket, noticing if it dies first. */
static gboolean vm_reconnect(Vm *vm, GError **errp)
{
    gint64 deadline = deadline_after_ms(opt_timeout_s * 1000);

    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GSocket) sock = unix_socket_connect(
            vm->qmp_path, MIN(deadline_after_ms(50), deadline), &err);
        int status;

        if (sock) {
            vm->qmp = qmp_new(sock, opt_timeout_s * 1000, errp);
            if (vm->qmp) {
                qmp_set_timeout(vm->qmp, opt_timeout_s * 1000);
                stamp(&vm->qmp_at, &vm->qmp_mono);
            }
            return vm->qmp != NULL;
        }
        if (waitpid(vm->pid, &status, WNOHANG) == vm->pid) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "QEMU exited during start-up (status 0x%x)%s%s", status,
                        vm->err_path ? "; see " : "",
                        vm->err_path ? vm->err_path : "");
            vm->pid = 0;
            return FALSE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return FALSE;
        }
    }
}

static void vm_wait_resumed(Vm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) ev = NULL;

    for (;;) {
        g_autoptr(JsonNode) info = NULL;
        const char *st;

        /* RESUME, unless the load fails first: then MIGRATION failed. */
        ev = qmp_wait_event(vm->qmp, "RESUME", 200, &err);
        if (ev) {
            break;
        }
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
            vm_fail(vm, "waiting for RESUME", err);
            return;
        }
        g_clear_error(&err);
        info = qmp_execute(vm->qmp, "query-migrate", NULL, &err);
        if (!info) {
            vm_fail(vm, "query-migrate", err);
            return;
        }
        st = json_object_get_string_member_with_default(
            json_node_get_object(info), "status", "none");
        if (g_str_equal(st, "failed") || g_str_equal(st, "cancelled")) {
            vm->failed = TRUE;
            vm->error = g_strdup_printf("restore %s: %s", st,
                json_object_get_string_member_with_default(
                    json_node_get_object(info), "error-desc", st));
            note("%s: %s", vm->name, vm->error);
            return;
        }
        if (mono_us() - vm->incoming_mono > opt_timeout_s * 1e6) {
            vm->failed = TRUE;
            vm->error = g_strdup_printf("no RESUME after %u s", opt_timeout_s);
            note("%s: %s", vm->name, vm->error);
            return;
        }
    }
    stamp_event(ev, &vm->resume_at, &vm->resume_mono);
    if (!qmp_wait_status(vm->qmp, "running", opt_timeout_s * 1000, &err)) {
        vm_fail(vm, "query-status", err);
        return;
    }
    stamp(&vm->running_at, &vm->running_mono);
}

/* Epoch µs at which PID 1 started: this boot's first userspace instant. */
static double userspace_start_us(void)
{
    struct timespec rt, bt;
    g_autofree char *stat = NULL;
    const char *p;
    unsigned long long start = 0;

    if (!g_file_get_contents("/proc/1/stat", &stat, NULL, NULL) ||
        !(p = strrchr(stat, ')'))) {
        return NAN;
    }
    /* field 22, starttime, in clock ticks; ")" ends field 2 */
    for (int field = 2; field < 21 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (!p || sscanf(p + 1, "%llu", &start) != 1) {
        return NAN;
    }
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    return (rt.tv_sec - bt.tv_sec) * 1e6 + (rt.tv_nsec - bt.tv_nsec) / 1e3 +
           start * 1e6 / sysconf(_SC_CLK_TCK);
}

static void print_restore_table(GPtrArray *vms, JsonArray *saved,
                                double reboot_at, const char *boot_before)
{
    g_autofree char *boot = boot_id();
    char v[6][32];
    double up = userspace_start_us();
    double first = NAN, last = NAN;     /* monotonic */
    double first_at = NAN;              /* wall clock, as up is */

    printf("%-16s %12s %12s %12s %12s %12s %12s\n", "VM", "pre-stop ms",
           "pause ms", "commit ms", "qemu start ms", "restore ms", "resume ms");
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        JsonObject *o = json_array_get_object_element(saved, i);

        fmt_ms(v[0], 32, num_member(o, "pre-stop-us"));
        fmt_ms(v[1], 32, num_member(o, "pause-us"));
        fmt_ms(v[2], 32, num_member(o, "commit-us"));
        fmt_ms(v[3], 32, vm->qmp_mono - vm->spawn_mono);
        fmt_ms(v[4], 32, vm->resume_mono - vm->incoming_mono);
        fmt_ms(v[5], 32, vm->running_mono - vm->resume_mono);
        printf("%-16s %12s %12s %12s %12s %12s %12s\n", vm->name, v[0], v[1],
               v[2], v[3], v[4], v[5]);
        /* Over the VMs that run (a failed one never does). */
        if (!isnan(vm->running_mono)) {
            first = isnan(first) || vm->spawn_mono < first ? vm->spawn_mono
                                                           : first;
            first_at = isnan(first_at) || vm->spawn_at < first_at
                       ? vm->spawn_at : first_at;
            last = isnan(last) || vm->running_mono > last ? vm->running_mono
                                                          : last;
        }
    }
    if (g_strcmp0(boot, boot_before) == 0) {
        printf("host: no reboot since the save\n");
    } else {
        fmt_ms(v[0], 32, up > reboot_at ? up - reboot_at : NAN);
        fmt_ms(v[1], 32, first_at - up);
        printf("host: reboot/kexec to userspace %s ms (wall clock: as good as "
               "the new kernel's), userspace to first QEMU start %s ms\n",
               v[0], v[1]);
    }
    fmt_ms(v[2], 32, last - first);
    printf("host: first QEMU start to last VM running %s ms\n", v[2]);
    fflush(stdout);
}

/* --times: what the table shows, unrounded, for the bench (epoch µs). */
static void write_times(GPtrArray *vms, JsonArray *saved, double reboot_at,
                        const char *boot_before)
{
    static const char *const save_keys[] = {
        "pre-stop-us", "pause-us", "commit-us", "vm-stop-us",
        "device-save-us", "sync-us", "sent-at-us",
        "stop-at-us", "completed-at-us", NULL,
    };
    g_autofree char *boot = boot_id();
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "rebooted");
    json_builder_add_boolean_value(b, g_strcmp0(boot, boot_before) != 0);
    add_num(b, "reboot-at-us", reboot_at);
    add_num(b, "userspace-at-us", userspace_start_us());
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        JsonObject *o = json_array_get_object_element(saved, i);

        json_builder_begin_object(b);
        add_str(b, "name", vm->name);
        add_str(b, "uri", vm->uri);
        for (int k = 0; save_keys[k]; k++) {
            add_num(b, save_keys[k], num_member(o, save_keys[k]));
        }
        add_num(b, "spawn-at-us", vm->spawn_at);
        add_num(b, "qmp-at-us", vm->qmp_at);
        add_num(b, "incoming-at-us", vm->incoming_at);
        add_num(b, "resume-at-us", vm->resume_at);
        add_num(b, "running-at-us", vm->running_at);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    if (!host_write_durably(opt_times, text, &err)) {
        note("%s", err->message);
    }
}

static int cmd_restore(const char *manifest_path)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_free);
    g_autoptr(GError) err = NULL;
    g_autofree char *done = NULL, *text = NULL;
    JsonObject *root;
    JsonArray *saved;
    guint restored = 0;
    gsize len = 0;

    text = host_read_trusted(manifest_path, &len, &err);
    if (!text && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
        note("%s: no manifest, nothing to restore", manifest_path);
        return EXIT_OK;
    }
    if (!text) {
        note("%s", err->message);
        return EXIT_FAILED;
    }
    if (!json_parser_load_from_data(parser, text, len, &err) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        note("%s: %s", manifest_path, err ? err->message : "not an object");
        return EXIT_FAILED;
    }
    root = json_node_get_object(json_parser_get_root(parser));
    if (g_strcmp0(json_object_get_string_member_with_default(root, "format", ""),
                  MANIFEST_FORMAT) ||
        json_object_get_int_member_with_default(root, "version", 0) !=
            MANIFEST_VERSION ||
        !json_object_has_member(root, "vms")) {
        note("%s: not a version %d %s", manifest_path, MANIFEST_VERSION,
             MANIFEST_FORMAT);
        return EXIT_FAILED;
    }
    saved = json_object_get_array_member(root, "vms");
    for (guint i = 0; i < json_array_get_length(saved); i++) {
        JsonObject *o = json_array_get_object_element(saved, i);
        Vm *vm = vm_new();

        g_ptr_array_add(vms, vm);
        vm->name = str_member(o, "name");
        vm->qmp_path = str_member(o, "qmp");
        vm->image = str_member(o, "image");
        vm->uri = str_member(o, "uri");
        vm->argv = strv_member(o, "argv");
        vm->env = strv_member(o, "env");
        vm->cwd = str_member(o, "cwd");
        vm->exe = str_member(o, "exe");
        vm->out_path = str_member(o, "stdout");
        vm->err_path = str_member(o, "stderr");
        vm->was_running = json_object_get_boolean_member_with_default(
            o, "was-running", TRUE);
        if (!vm->name || !vm->qmp_path || !vm->uri || !vm->argv[0]) {
            note("%s: VM %u is incomplete", manifest_path, i);
            return EXIT_FAILED;
        }
    }

    /* Start every QEMU, then talk to each: they start up in parallel. */
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm_spawn(vm, &err)) {
            vm_fail(vm, "start", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm->failed && (!vm_reconnect(vm, &err) ||
                            !set_cpr_reboot(vm->qmp, &err))) {
            vm_fail(vm, "QMP", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonObject) args = NULL;

        if (vm->failed) {
            continue;
        }
        args = obj_args("uri", vm->uri);
        stamp(&vm->incoming_at, &vm->incoming_mono);
        if (!qmp_send(vm->qmp, "migrate-incoming", args, &err)) {
            vm_fail(vm, "migrate-incoming", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];
        g_autoptr(JsonNode) ret = NULL;

        if (vm->failed) {
            continue;
        }
        ret = qmp_receive(vm->qmp, "migrate-incoming", &err);
        if (!ret) {
            vm_fail(vm, "migrate-incoming", err);
            g_clear_error(&err);
        }
    }
    for (guint i = 0; i < vms->len; i++) {
        Vm *vm = vms->pdata[i];

        if (!vm->failed) {
            vm_wait_resumed(vm);
        }
        if (!vm->failed && !vm->was_running) {
            qmp_run(vm->qmp, "stop", NULL, NULL);
        }
        restored += !vm->failed;
    }
    {
        g_autofree char *before = str_member(root, "boot-id-before");

        print_restore_table(vms, saved, num_member(root, "reboot-at-us"),
                            before);
        if (opt_times) {
            write_times(vms, saved, num_member(root, "reboot-at-us"), before);
        }
    }

    /* A restored VM runs on: its image must never be restored again. */
    done = g_strconcat(manifest_path, ".restored", NULL);
    if (restored == vms->len) {
        if (!host_rename(manifest_path, done, &err)) {
            note("%s", err->message);
            return EXIT_FAILED;
        }
        note("%u VM(s) restored; manifest moved to %s", restored, done);
        return EXIT_OK;
    }
    /* Keep only the VMs still to restore, and stop their failed QEMUs. */
    for (guint i = vms->len; i-- > 0;) {
        Vm *vm = vms->pdata[i];

        if (vm->failed) {
            if (vm->pid > 0) {
                kill(vm->pid, SIGTERM);
                waitpid(vm->pid, NULL, 0);
            }
            note("%s: not restored: %s", vm->name, vm->error);
        } else {
            json_array_remove_element(saved, i);
        }
    }
    {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autofree char *text = NULL;

        json_generator_set_root(gen, json_parser_get_root(parser));
        json_generator_set_pretty(gen, TRUE);
        text = json_generator_to_data(gen, NULL);
        if (!host_write_durably(manifest_path, text, &err)) {
            note("%s", err->message);
        }
    }
    note("%u of %u VM(s) restored; %s keeps the others, run restore again "
         "once the cause is fixed", restored, vms->len, manifest_path);
    return EXIT_FAILED;
}

static const char usage_text[] =
    "Usage: cpr-host-update save [OPTIONS] QMP_SOCKET[=IMAGE]...\n"
    "       cpr-host-update restore [--manifest=PATH]\n"
    "\n"
    "save: set up every VM for cpr-reboot (x-ignore-shared, mode cpr-reboot),\n"
    "make the images that do not exist yet (cpr-pmem create),\n"
    "save them all at once to pmem:IMAGE (a QEMU without the pmem: transport:\n"
    "through exec:cpr-pmem save, then cpr-pmem wait), check every image with\n"
    "cpr-pmem,\n"
    "write the manifest, then run the reboot command.  Any failure before the\n"
    "reboot command resumes every VM and invalidates this attempt's images.\n"
    "restore: start every VM of the manifest again with its command line\n"
    "(+ -incoming defer), restore it from its image, wait until it runs,\n"
    "print the per-phase table.\n"
    "\n"
    "Options:\n"
    "  --image-dir=DIR     image of a socket without =IMAGE: DIR/NAME.cpr,\n"
    "                      NAME the socket's file name less its extension\n"
    "  --manifest=PATH     default: " MANIFEST_NAME " beside the first image\n"
    "                      (save) -- it must be on the persistent medium\n"
    "  --reboot-cmd=CMD    run with /bin/sh -c (default: " DEFAULT_REBOOT ",\n"
    "                      which needs a kernel loaded with kexec -l)\n"
    "  --force-cold-reboot run a reboot command that is not a kexec even\n"
    "                      when an image or guest RAM is on DRAM-backed\n"
    "                      pmem (e820, memmap=), which it loses; without\n"
    "                      it, save refuses before touching any VM\n"
    "  --dry-run           save and check, then resume every VM; no reboot\n"
    "  --timeout=SECONDS   per QMP step (default 120)\n"
    "  --times=PATH        restore: every phase's times as JSON (epoch us)\n"
    "  --scheme=file       save: QEMU's own file: transport instead of pmem:,\n"
    "                      for comparison measurements only (no image check;\n"
    "                      fdatasync of each image and its directory)\n"
    "  -h, --help\n"
    "\n"
    "Environment: CPR_PMEM, the cpr-pmem tool (default: beside this one, PATH)\n"
    "\n"
    "Exit status: 0 done; 1 failed (save: every VM left as it was; restore:\n"
    "the manifest keeps the VMs not restored); 2 usage\n";

int main(int argc, char **argv)
{
    g_autofree char *manifest = NULL, *image_dir = NULL, *reboot_cmd = NULL;
    g_autofree char *scheme = NULL;
    gboolean dry_run = FALSE;
    gint timeout = 0;
    g_autoptr(GError) err = NULL;
    GOptionEntry entries[] = {
        { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest, NULL, NULL },
        { "image-dir", 0, 0, G_OPTION_ARG_FILENAME, &image_dir, NULL, NULL },
        { "reboot-cmd", 0, 0, G_OPTION_ARG_STRING, &reboot_cmd, NULL, NULL },
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, NULL, NULL },
        { "force-cold-reboot", 0, 0, G_OPTION_ARG_NONE, &opt_force_cold, NULL,
          NULL },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, NULL, NULL },
        { "scheme", 0, 0, G_OPTION_ARG_STRING, &scheme, NULL, NULL },
        { "times", 0, 0, G_OPTION_ARG_FILENAME, &opt_times, NULL, NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);

    for (int i = 1; i < argc; i++) {
        if (g_str_equal(argv[i], "-h") || g_str_equal(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
    }
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc < 2) {
        fprintf(stderr, "cpr-host-update: %s\n%s",
                err ? err->message : "no command", usage_text);
        return EXIT_USAGE;
    }
    if (timeout > 0) {
        opt_timeout_s = timeout;
    }
    if (scheme && !g_str_equal(scheme, "pmem") && !g_str_equal(scheme, "file")) {
        fprintf(stderr, "cpr-host-update: --scheme is pmem or file\n");
        return EXIT_USAGE;
    }
    opt_file = scheme && g_str_equal(scheme, "file");
    /* A QEMU that dies mid-command must not take this tool with it. */
    signal(SIGPIPE, SIG_IGN);
    cpr_pmem_path = find_cpr_pmem(argv[0]);
    if (g_str_equal(argv[1], "save")) {
        return cmd_save(argc - 2, argv + 2, manifest, image_dir,
                        reboot_cmd ? reboot_cmd : DEFAULT_REBOOT, dry_run);
    }
    if (g_str_equal(argv[1], "restore") && argc == 2) {
        if (!manifest) {
            fprintf(stderr, "cpr-host-update: restore needs --manifest\n");
            return EXIT_USAGE;
        }
        return cmd_restore(manifest);
    }
    fprintf(stderr, "cpr-host-update: unknown command '%s'\n%s", argv[1],
            usage_text);
    return EXIT_USAGE;
}
