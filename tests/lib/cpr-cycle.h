/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One cpr-reboot cycle, as the tests, the bench and the demo run it: save
 * a running QEMU's state to a URI (file:... or pmem:...), quit it, start
 * a fresh QEMU with -incoming defer and restore.  Times come from QEMU
 * itself (QMP event timestamps and, with cpr_trace_args, the
 * vmstate_downtime_* trace points, both gettimeofday() with
 * microseconds), so the caller's own polling and scheduling do not leak
 * into the numbers.  Failures carry the QEMU log.
 */
#ifndef HARNESS_CPR_CYCLE_H
#define HARNESS_CPR_CYCLE_H

#include "qemu-proc.h"

/* Every field in microseconds (or bytes); NAN where it does not apply. */
typedef struct {
    double pause_us;       /* STOP event -> MIGRATION "completed" event */
    double downtime_us;    /* query-migrate "downtime" (ms resolution) */
    double stop_us;        /* trace src-downtime-start -> src-vm-stopped */
    double saved_us;       /* src-vm-stopped -> src-non-iterable-saved */
    double commit_us;      /* src-non-iterable-saved -> src-transport-committed */
    double fdatasync_us;   /* fdatasync() of a file: image after completed */
    double stream_bytes;   /* bytes QEMU wrote into the stream */
    double qmp_ready_us;   /* destination spawn -> QMP negotiated */
    double incoming_us;    /* migrate-incoming sent -> RESUME event */
    double validate_us;    /* transport in_open (whole-image check) */
} CprSample;

void cpr_sample_clear(CprSample *s);

typedef struct {
    gboolean ignore_shared;   /* cpr-reboot with RAM on a shared file */
    gboolean mapped_ram;      /* RAM pages at fixed offsets (seekable) */
    guint multifd_channels;   /* 0: no multifd */
} CprSetup;

/* The usual case: guest RAM on a shared file stays where it is. */
#define CPR_SETUP_SHARED (&(const CprSetup){ .ignore_shared = TRUE })

/*
 * Set up the migration capabilities and parameters every transport gets
 * alike: events on, cpr-reboot, max-bandwidth raised (the default 128 MiB/s
 * cap would otherwise throttle a full-RAM save); mapped-ram and multifd
 * only when @setup asks for them.
 */
gboolean cpr_setup(Qmp *qmp, const CprSetup *setup, GError **errp);

/* Send "migrate" without waiting (for concurrent saves). */
gboolean cpr_save_start(QemuProc *src, const CprSetup *setup,
                          const char *uri, GError **errp);
/* Wait for "completed"; fills pause/downtime and the absolute event times. */
gboolean cpr_save_finish(QemuProc *src, CprSample *s, double *stop_at_us,
                           double *completed_at_us, GError **errp);
/* Quit @src and read the phases from its trace log. */
gboolean cpr_save_quit(QemuProc *src, CprSample *s, GError **errp);

/* start + finish + quit. */
gboolean cpr_save(QemuProc *src, const CprSetup *setup, const char *uri,
                    CprSample *s, GError **errp);

/*
 * Spawn @opts + -incoming defer (+ cpr_preload_args() for a transport
 * plugin's @uri), restore from @uri, wait for RESUME.
 */
QemuProc *cpr_restore(const QemuProcOpts *opts, const CprSetup *setup,
                        const char *uri, CprSample *s, GError **errp);

/*
 * The restore seen from outside (bench): times from sending
 * migrate-incoming, on the caller's gettimeofday() clock.  A management
 * client learns that the VM runs from query-status, which QEMU's main
 * loop answers only once it is free again: after RESUME, the migration's
 * clean-up (the transport's in_close included) runs in the same main-loop
 * callback.
 */
typedef struct {
    double reply_us;      /* migrate-incoming's reply received */
    double resume_us;     /* RESUME event (QEMU's timestamp) */
    double running_us;    /* first query-status reply saying "running" */
    double polls;         /* query-status commands it took */
} CprRestoreSeen;

/*
 * cpr_restore(), polling query-status back to back (each sent as soon as
 * the last reply is in) from migrate-incoming's reply until "running".
 */
QemuProc *cpr_restore_seen(const QemuProcOpts *opts, const CprSetup *setup,
                           const char *uri, CprSample *s,
                           CprRestoreSeen *seen, GError **errp);

/* cpr_save, then cpr_restore with @src's own options, named @dst_name. */
QemuProc *cpr_cycle(QemuProc *src, const CprSetup *setup, const char *uri,
                    const char *dst_name, CprSample *s, GError **errp);

/*
 * The scheme of @uri if a transport plugin serves it (g_free), NULL for
 * QEMU's own schemes (file:, tcp:, unix:, exec:, fd:, ...).
 */
char *cpr_plugin_scheme(const char *uri);

/*
 * @args plus "-global migration.x-preload-transports=SCHEME" when a
 * transport plugin serves @uri and @args do not preload already, so that
 * the restore (or the first save) does not pay for loading it.  Patched
 * QEMU only: stock QEMU has no such property.  g_strfreev() the result.
 */
GStrv cpr_preload_args(const char *const *args, const char *uri);

/* QEMU arguments that make cpr_save_quit() find the save's phases. */
extern const char *const cpr_trace_args[];

#endif
