/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One measured cpr-reboot save and restore.  Times come from QEMU itself
 * (QMP event timestamps and vmstate_downtime_* trace points, both
 * gettimeofday() with microseconds), so the bench's own polling and
 * scheduling do not leak into the numbers.
 */
#ifndef BENCH_TIMED_CYCLE_H
#define BENCH_TIMED_CYCLE_H

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
} CycleSample;

void cycle_sample_clear(CycleSample *s);

typedef struct {
    gboolean ignore_shared;   /* cpr-reboot with RAM on a shared file */
} SaveSetup;

/*
 * Set up the migration capabilities and parameters every transport gets
 * alike: events on, cpr-reboot, max-bandwidth raised (the default 128 MiB/s
 * cap would otherwise throttle a full-RAM save).
 */
gboolean bench_setup(Qmp *qmp, const SaveSetup *setup, GError **errp);

/* Send "migrate" without waiting (for concurrent saves). */
gboolean bench_save_start(QemuProc *src, const SaveSetup *setup,
                          const char *uri, GError **errp);
/* Wait for "completed"; fills pause/downtime and the absolute event times. */
gboolean bench_save_finish(QemuProc *src, CycleSample *s, double *stop_at_us,
                           double *completed_at_us, GError **errp);
/* Quit @src and read the phases from its trace log. */
gboolean bench_save_quit(QemuProc *src, CycleSample *s, GError **errp);

/* start + finish + quit. */
gboolean bench_save(QemuProc *src, const SaveSetup *setup, const char *uri,
                    CycleSample *s, GError **errp);

/* Spawn @opts + -incoming defer, restore from @uri, wait for RESUME. */
QemuProc *bench_restore(const QemuProcOpts *opts, const SaveSetup *setup,
                        const char *uri, CycleSample *s, GError **errp);

/* Time an fdatasync() of @path (the durable-save equivalent for file:). */
double bench_fdatasync_us(const char *path);

/* QEMU arguments every bench process gets (trace points with timestamps). */
extern const char *const bench_trace_args[];

#endif
