/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hash-dispatch.c: the XXH3 calls hash.h routes there give the
 * library's baseline values, whichever build they run (AVX-512 or AVX2
 * on a CPU that has it), for every length class of XXH3 (short, mid, long, the
 * stripe and block edges) and through the streaming state.
 */
#include <glib.h>
#include <stdint.h>
#include <sys/platform/x86.h>

#define XXH_DISPATCH_DISABLE_REPLACE
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "hash-variants.h"

static const size_t lengths[] = {
    0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 255, 256, 1023, 1024,
    1025, 4096, 65536 + 7, 1 << 20,
};

static void test_same_values(void)
{
    size_t max = 1 << 20;
    uint8_t *buf = g_malloc(max);
    gboolean avx2 = CPU_FEATURE_ACTIVE(AVX2);
    gboolean avx512 = CPU_FEATURE_ACTIVE(AVX512F);

    g_test_message("AVX2 build %s, AVX-512 build %s",
                   avx2 ? "compared" : "not run",
                   avx512 ? "compared" : "not run");
    for (size_t i = 0; i < max; i++) {
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(lengths); i++) {
        size_t n = lengths[i];
        uint64_t want = XXH3_64bits(buf, n);
        uint64_t seeded = XXH3_64bits_withSeed(buf, n, 0x1234 + n);
        XXH3_state_t *st = XXH3_createState();

        g_assert_cmphex(XXH3_64bits_dispatch(buf, n), ==, want);
        g_assert_cmphex(XXH3_64bits_withSeed_dispatch(buf, n, 0x1234 + n),
                        ==, seeded);
        /* The state, fed in uneven pieces. */
        g_assert_cmpint(XXH3_64bits_reset(st), ==, XXH_OK);
        for (size_t at = 0; at < n; at += 1000 + at % 333) {
            size_t len = MIN(n - at, 1000 + at % 333);

            g_assert_cmpint(XXH3_64bits_update_dispatch(st, buf + at, len),
                            ==, XXH_OK);
        }
        g_assert_cmphex(XXH3_64bits_digest(st), ==, want);
        if (avx2) {
            g_assert_cmphex(cpr_xxh3_64_avx2(buf, n), ==, want);
            g_assert_cmphex(cpr_xxh3_64_seed_avx2(buf, n, 0x1234 + n), ==,
                            seeded);
        }
        if (avx512) {
            g_assert_cmphex(cpr_xxh3_64_avx512(buf, n), ==, want);
            g_assert_cmphex(cpr_xxh3_64_seed_avx512(buf, n, 0x1234 + n), ==,
                            seeded);
        }
        XXH3_freeState(st);
    }
    g_free(buf);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hash/dispatch-same-values", test_same_values);
    return g_test_run();
}
