/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update: update a host's kernel under running QEMU VMs
 * (docs/host-update.md).
 *
 *   save:    for the VMs behind the given QMP sockets, set up cpr-reboot,
 *            make their missing images, save them all at once through pmem:
 *            (a QEMU without the transport hook: exec:cpr-pmem save, then
 *            cpr-pmem wait), verify every image with cpr-pmem, write a
 *            manifest next to the images, then run the reboot command
 *            (kexec -e by default).  Any failure before the reboot command
 *            resumes every VM and invalidates the images.
 *   restore: after the boot, start every VM of the manifest again with its
 *            command line, environment and working directory, restore it
 *            from its image and wait until it runs.
 *
 * The QMP client is the test harness's (tests/lib/qmp.c), compiled in
 * unchanged.  This header: the VM record every part works on, the
 * options, and what each file offers the others.
 */
#ifndef CPR_HOST_UPDATE_H
#define CPR_HOST_UPDATE_H

#include "qmp.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <sys/types.h>

#define MANIFEST_NAME    "cpr-host-update.json"
#define DEFAULT_REBOOT   "kexec -e"

/* Exit codes: 0 done; 1 failed: every VM left as it was (save, including
 * a failed reboot command) or some VMs not restored (restore); 2 usage. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct Vm {
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
    gboolean created;    /* this attempt's save makes the image */
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

/* ---- options (cpr-host-update.c) ---- */
extern guint opt_timeout_s;     /* --timeout: per QMP step */
/*
 * --scheme=file, for comparison measurements only (bench/blackout.c):
 * QEMU's own file: transport instead of pmem:, which stock QEMU can do.
 * No image is made or checked (file: images have no structure to check);
 * "durable" is an fdatasync() of each image and of its directory after
 * the save, timed; a failed attempt removes the completed images; the
 * restore does not preload a transport.
 */
extern gboolean opt_file;
extern gboolean opt_force_cold;  /* --force-cold-reboot */
/* --times=PATH (restore): every phase's times as JSON, for the bench. */
extern char *opt_times;

/* ---- host-vm.c: the VM record, messages ---- */
/* A VM with no instant and no time yet (NAN: never printed). */
Vm *vm_new(void);
void vm_free(Vm *vm);
void note(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Mark @vm failed, its first error kept, and say so. */
void vm_fail(Vm *vm, const char *what, GError *err);
/* { @k: @v }, for a QMP command's arguments. */
JsonObject *obj_args(const char *k, const char *v);

/* ---- host-clock.c: instants and durations ---- */
/* CLOCK_MONOTONIC µs: for durations. */
double mono_us(void);
/* Epoch µs: for instants that span the reboot. */
double now_us(void);
/* Now, on both clocks. */
void stamp(double *at, double *mono);
/* A QMP event's instant on both clocks (NAN without @ev). */
void stamp_event(JsonObject *ev, double *at, double *mono);
/* When this boot's userspace began (PID 1 started), on both clocks. */
void userspace_start(double *at, double *mono);

/* ---- vm-process.c: what a running QEMU was started with ---- */
gboolean vm_connect(Vm *vm, GError **errp);

/* ---- run-cpr-pmem.c: the image tool ---- */
extern char *cpr_pmem_path;
extern const char *cpr_pmem_for_reboot;   /* check's --for=..., or NULL */
char *find_cpr_pmem(const char *self);
int run_cpr_pmem(const char *cmd, const char *opt, const char *image,
                 char **out);
const char *cpr_pmem_check_for(gboolean kexec);

/* ---- save-uri.c: pmem:, or the exec: helper ---- */
gboolean vm_choose_uri(Vm *vm, guint index, GError **errp);
gboolean vm_exec_committed(Vm *vm, GError **errp);

/* ---- save-trace.c: QEMU's downtime trace point ---- */
void trace_start(Vm *vm);
void trace_stop(Vm *vm);
void trace_finish(Vm *vm);

/* ---- vm-save.c: one VM's part of the save ---- */
gboolean set_cpr_reboot(Qmp *qmp, GError **errp);
gboolean vm_setup(Vm *vm, GError **errp);
gboolean vm_prepare_image(Vm *vm, GError **errp);
void vm_wait_saved(Vm *vm);
gboolean sync_image(Vm *vm, GError **errp);

/* ---- rollback.c ---- */
void rollback(GPtrArray *vms, gboolean invalidate);

/* ---- manifest.c: what the save leaves for the restore ---- */
char *boot_id(void);
char *manifest_text(GPtrArray *vms, double reboot_at, const char *cmd);
/* 1: loaded into @parser (*@root) and @vms; 0: none; -1: unusable. */
int manifest_load(const char *path, JsonParser *parser, JsonObject **root,
                  GPtrArray *vms);
void manifest_rewrite(const char *path, JsonParser *parser);
double num_member(JsonObject *o, const char *name);
char *str_member(JsonObject *o, const char *name);

/* ---- phase-tables.c: the times, as tables and --times ---- */
void print_save_table(GPtrArray *vms);
void print_restore_table(GPtrArray *vms, JsonArray *saved,
                         double reboot_at, const char *boot_before);
void write_times(GPtrArray *vms, JsonArray *saved, double reboot_at,
                 const char *boot_before);

/* ---- vm-restore.c: one VM's part of the restore ---- */
gboolean vm_spawn(Vm *vm, GError **errp);
gboolean vm_reconnect(Vm *vm, GError **errp);
void vm_wait_resumed(Vm *vm);

/* ---- host-save.c, host-restore.c: the two commands ---- */
int cmd_save(int argc, char **argv, const char *manifest,
             const char *image_dir, const char *reboot_cmd, gboolean dry_run);
int cmd_restore(const char *manifest_path);

#endif
