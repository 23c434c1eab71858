/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Median / min / max of a sample set; NAN entries (not applicable) skipped. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <glib.h>

typedef struct {
    double median, min, max;
    guint n;
} Summary;

Summary summarize(const double *v, guint n);

#endif
