/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qemu-log.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * The time of the trace line starting at @line, whose event name starts
 * at @event, in microseconds since the epoch, or NAN.
 */
static double line_time_us(const char *line, const char *event)
{
    const char *at = memchr(line, '@', event - line);
    g_autofree char *iso = NULL;
    g_autoptr(GDateTime) dt = NULL;

    if (at) {
        return strtod(at + 1, NULL) * 1e6;
    }
    if (event - line < 2 || event[-1] != ' ') {
        return NAN;
    }
    iso = g_strndup(line, event - 1 - line);
    dt = g_date_time_new_from_iso8601(iso, NULL);
    return dt ? (double)g_date_time_to_unix(dt) * 1e6 +
                g_date_time_get_microsecond(dt) : NAN;
}

double qemu_log_checkpoint(const char *log, const char *name)
{
    g_autofree char *needle = g_strdup_printf("vmstate_downtime_checkpoint %s\n",
                                              name);
    double found = NAN;

    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle)) {
        const char *line = p;

        if (p == log || (p[-1] != ':' && p[-1] != ' ')) {
            continue;
        }
        while (line > log && line[-1] != '\n') {
            line--;
        }
        if (!isnan(line_time_us(line, p))) {
            found = line_time_us(line, p);
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
