/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

Summary summarize(const double *v, guint n)
{
    g_autofree double *s = g_new(double, n ? n : 1);
    Summary r = { NAN, NAN, NAN, 0 };

    for (guint i = 0; i < n; i++) {
        if (!isnan(v[i])) {
            s[r.n++] = v[i];
        }
    }
    if (!r.n) {
        return r;
    }
    qsort(s, r.n, sizeof(double), cmp_double);
    r.min = s[0];
    r.max = s[r.n - 1];
    r.median = r.n % 2 ? s[r.n / 2] : (s[r.n / 2 - 1] + s[r.n / 2]) / 2;
    return r;
}
