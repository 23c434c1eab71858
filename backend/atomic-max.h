/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An atomic maximum: a value any number of threads may raise at once. */
#ifndef CPR_ATOMIC_MAX_H
#define CPR_ATOMIC_MAX_H

#include <stdatomic.h>
#include <stdint.h>

/* *@v = max(*@v, @x). */
static inline void cpr_atomic_max(_Atomic uint64_t *v, uint64_t x)
{
    uint64_t cur = atomic_load(v);

    while (cur < x && !atomic_compare_exchange_weak(v, &cur, x)) {
    }
}

#endif
