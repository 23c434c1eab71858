/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The clock and the median of the microbenchmarks (cpr-abi-micro.c,
 * binding-cost.c): plain C, no glib, like the transport they time. */
#ifndef BENCH_MICRO_TIME_H
#define BENCH_MICRO_TIME_H

#include <stdlib.h>
#include <time.h>

static inline double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Sorts @v. */
static inline double median(double *v, int n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
