/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * XXH3 built for one vector extension: this file alone is compiled with
 * -mavx2 (CPR_XXH3_VARIANT=avx2) and again with -mavx512f (avx512), so
 * that xxhash.h picks that extension's code; hash-dispatch.c calls the
 * build the CPU runs.  Inlined here, under xxhash.h's private names.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "hash-variants.h"

#define PASTE(a, b) a##_##b
#define NAME(a, b) PASTE(a, b)

uint64_t NAME(cpr_xxh3_64, CPR_XXH3_VARIANT)(const void *in, size_t len)
{
    return XXH3_64bits(in, len);
}

uint64_t NAME(cpr_xxh3_64_seed, CPR_XXH3_VARIANT)(const void *in, size_t len,
                                                  uint64_t seed)
{
    return XXH3_64bits_withSeed(in, len, seed);
}

/* @state is the library's XXH3_state_t: the same layout (one header). */
int NAME(cpr_xxh3_update, CPR_XXH3_VARIANT)(void *state, const void *in,
                                            size_t len)
{
    return XXH3_64bits_update((XXH3_state_t *)state, in, len) == XXH_OK ?
           0 : -1;
}
