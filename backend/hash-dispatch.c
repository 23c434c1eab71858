/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The XXH3 calls hash.h routes here run the AVX-512 or AVX2 build when
 * the CPU has it (about twice the baseline's speed: the checksum is half
 * the CPU cost of a big save), chosen once, at the first call.
 *
 * The library is linked in statically: loading libxxhash.so.0 cost ~0.1
 * ms of a first save's migrate command inside QEMU.  The CPU's features
 * come from glibc, which read them at start-up: CPUID is a VM exit under
 * a hypervisor (libgcc's __builtin_cpu_init, a constructor, added 60 µs
 * to the module's dlopen here).
 */
#include "hash.h"
#include "hash-variants.h"

#include <stdatomic.h>
#include <sys/platform/x86.h>

/* The library's own names, below, are its baseline (SSE2) build. */
#undef XXH3_64bits
#undef XXH3_64bits_withSeed
#undef XXH3_64bits_update

typedef struct Build {
    uint64_t (*h64)(const void *in, size_t len);
    uint64_t (*seed)(const void *in, size_t len, uint64_t seed);
    int (*update)(void *state, const void *in, size_t len);
} Build;

static uint64_t base_h64(const void *in, size_t len)
{
    return XXH3_64bits(in, len);
}

static uint64_t base_seed(const void *in, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(in, len, seed);
}

static int base_update(void *state, const void *in, size_t len)
{
    return XXH3_64bits_update(state, in, len) == XXH_OK ? 0 : -1;
}

static const Build builds[] = {
    { base_h64, base_seed, base_update },
    { cpr_xxh3_64_avx2, cpr_xxh3_64_seed_avx2, cpr_xxh3_update_avx2 },
    { cpr_xxh3_64_avx512, cpr_xxh3_64_seed_avx512, cpr_xxh3_update_avx512 },
};

/* build -- the one this CPU runs (any thread may ask first) */
static const Build *build(void)
{
    static const Build *_Atomic chosen;
    const Build *b = atomic_load_explicit(&chosen, memory_order_relaxed);

    if (!b) {
        b = &builds[CPU_FEATURE_ACTIVE(AVX512F) ? 2 :
                    CPU_FEATURE_ACTIVE(AVX2) ? 1 : 0];
        atomic_store_explicit(&chosen, b, memory_order_relaxed);
    }
    return b;
}

XXH64_hash_t XXH3_64bits_dispatch(const void *in, size_t len)
{
    return build()->h64(in, len);
}

XXH64_hash_t XXH3_64bits_withSeed_dispatch(const void *in, size_t len,
                                           XXH64_hash_t seed)
{
    return build()->seed(in, len, seed);
}

XXH_errorcode XXH3_64bits_update_dispatch(XXH3_state_t *state,
                                          const void *in, size_t len)
{
    return build()->update(state, in, len) == 0 ? XXH_OK : XXH_ERROR;
}
