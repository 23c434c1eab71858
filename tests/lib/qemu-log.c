/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qemu-log.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "YYYY-MM-DDTHH:MM:SS.UUUUUUZ " at @line: µs since the epoch, or NAN. */
static double iso_time(const char *line)
{
    int y, mo, d, h, mi, sec, us, n = 0;
    GDateTime *dt;
    double t;

    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ %n", &y, &mo, &d, &h, &mi,
               &sec, &us, &n) != 7 || n == 0) {
        return NAN;
    }
    dt = g_date_time_new_utc(y, mo, d, h, mi, sec);
    if (!dt) {
        return NAN;
    }
    t = g_date_time_to_unix(dt) * 1e6 + us;
    g_date_time_unref(dt);
    return t;
}

double qemu_log_checkpoint(const char *log, const char *name)
{
    /* QEMU 10.0 prints "PID@SECONDS.MICROS:vmstate_downtime_checkpoint
     * NAME", 10.2 "YYYY-MM-DDTHH:MM:SS.UUUUUUZ vmstate_downtime_checkpoint
     * NAME" */
    g_autofree char *needle = g_strdup_printf("vmstate_downtime_checkpoint %s\n",
                                              name);
    double found = NAN;

    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle)) {
        const char *line = p;
        const char *at;

        while (line > log && line[-1] != '\n') {
            line--;
        }
        if (p > line && p[-1] == ':' && (at = memchr(line, '@', p - line))) {
            found = strtod(at + 1, NULL) * 1e6;
        } else if (p > line && p[-1] == ' ') {
            double t = iso_time(line);

            found = isnan(t) ? found : t;
        }
    }
    return found;
}

void qemu_log_phases(const char *log, double *stop, double *saved,
                     double *commit)
{
    double start = qemu_log_checkpoint(log, "src-downtime-start");
    double stopped = qemu_log_checkpoint(log, "src-vm-stopped");
    double dev = qemu_log_checkpoint(log, "src-non-iterable-saved");
    double com = qemu_log_checkpoint(log, "src-transport-committed");

    /* double has 15-16 digits: epoch µs fits with µs precision */
    *stop = round(stopped - start);
    *saved = round(dev - stopped);
    *commit = round(com - dev);
}
