/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qemu-log.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double qemu_log_checkpoint(const char *log, const char *name)
{
    g_autofree char *needle = g_strdup_printf(":vmstate_downtime_checkpoint %s\n",
                                              name);
    double found = NAN;

    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle)) {
        const char *line = p;
        const char *at;

        while (line > log && line[-1] != '\n') {
            line--;
        }
        at = memchr(line, '@', p - line);
        if (at) {
            found = strtod(at + 1, NULL) * 1e6;
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
