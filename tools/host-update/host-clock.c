/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The clocks of cpr-host-update's phase times.  Every duration it prints
 * is a difference of CLOCK_MONOTONIC instants.  The wall clock is kept
 * only for instants that must be compared with something on it: QEMU's
 * QMP event timestamps (QEMU stamps them with gettimeofday), and the
 * instants the manifest and --times carry across the reboot, where no
 * monotonic clock survives.
 */
#include "host-update.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* now_us -- the wall clock, epoch µs: for instants, never durations. */
double now_us(void)
{
    return (double)g_get_real_time();
}

/* mono_us -- CLOCK_MONOTONIC (g_get_monotonic_time), µs: for durations. */
double mono_us(void)
{
    return (double)g_get_monotonic_time();
}

/* stamp -- now, on both clocks. */
void stamp(double *at, double *mono)
{
    *at = now_us();
    *mono = mono_us();
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
 * stamp_event -- an event's instant on both clocks: QEMU stamps it with
 * the wall clock only, so its monotonic time is now's less how long ago
 * (on the wall clock, the one thing to compare QEMU's stamp with) it
 * happened; a wall clock step matters only if it falls in that short
 * interval.
 */
void stamp_event(JsonObject *ev, double *at, double *mono)
{
    double wall = now_us(), now = mono_us();

    *at = ev ? event_us(ev) : NAN;
    *mono = now - (wall - *at);
}

/*
 * userspace_start -- when PID 1 started: this boot's first userspace
 * instant.  Its start time is on CLOCK_BOOTTIME; *@mono is it moved onto
 * CLOCK_MONOTONIC (they differ by the time spent suspended, none of it
 * since), *@at onto the wall clock, for the time since the reboot
 * command, which ran under the previous kernel.  NAN if unknown.
 */
void userspace_start(double *at, double *mono)
{
    struct timespec rt, bt, mt;
    g_autofree char *stat = NULL;
    const char *p;
    unsigned long long start = 0;
    double since_boot;

    *at = *mono = NAN;
    if (!g_file_get_contents("/proc/1/stat", &stat, NULL, NULL) ||
        !(p = strrchr(stat, ')'))) {
        return;
    }
    /* field 22, starttime, in clock ticks; ")" ends field 2 */
    for (int field = 2; field < 21 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (!p || sscanf(p + 1, "%llu", &start) != 1) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_BOOTTIME, &bt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    since_boot = start * 1e6 / sysconf(_SC_CLK_TCK);
    *at = (rt.tv_sec - bt.tv_sec) * 1e6 + (rt.tv_nsec - bt.tv_nsec) / 1e3 +
          since_boot;
    *mono = (mt.tv_sec - bt.tv_sec) * 1e6 + (mt.tv_nsec - bt.tv_nsec) / 1e3 +
            since_boot;
}
