/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The XXH3 builds hash-dispatch.c chooses from (hash-simd.c). */
#ifndef CPR_HASH_VARIANTS_H
#define CPR_HASH_VARIANTS_H

#include <stddef.h>
#include <stdint.h>

uint64_t cpr_xxh3_64_avx2(const void *in, size_t len);
uint64_t cpr_xxh3_64_seed_avx2(const void *in, size_t len, uint64_t seed);
int cpr_xxh3_update_avx2(void *state, const void *in, size_t len);

uint64_t cpr_xxh3_64_avx512(const void *in, size_t len);
uint64_t cpr_xxh3_64_seed_avx512(const void *in, size_t len, uint64_t seed);
int cpr_xxh3_update_avx512(void *state, const void *in, size_t len);

#endif
