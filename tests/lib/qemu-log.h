/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save phases from QEMU's vmstate_downtime_checkpoint trace lines.
 * With -msg timestamp=on the "log" trace backend prints
 * "PID@SECONDS.MICROS:vmstate_downtime_checkpoint NAME" (QEMU 10.0, the
 * patched backport and Debian's) or "YYYY-MM-DDTHH:MM:SS.UUUUUUZ
 * vmstate_downtime_checkpoint NAME" (QEMU 10.2).
 */
#ifndef HARNESS_QEMU_LOG_H
#define HARNESS_QEMU_LOG_H

/* Time of the last checkpoint @name in @log in microseconds, or NAN. */
double qemu_log_checkpoint(const char *log, const char *name);

/* stop: downtime-start -> vm-stopped; saved: -> non-iterable-saved;
 * commit: -> transport-committed (NAN when the transport has none). */
void qemu_log_phases(const char *log, double *stop, double *saved,
                     double *commit);

#endif
