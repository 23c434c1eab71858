/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Pure format, placement and fingerprint logic: no files. */
#include <glib.h>
#include <string.h>
#include <xxhash.h>

#include "format.h"
#include "metadata.h"
#include "placement.h"

static CprRecord sample_record(uint64_t gen)
{
    CprRecord r = {
        .version = CPR_REC_VERSION,
        .generation = gen,
        .flags = CPR_REC_FLAG_INVALIDATED,
        .payload_off = 0x1122334455667788ull,
        .payload_len = 0x0102030405060708ull,
        .payload_xxh3 = 0xdeadbeefcafef00dull,
        .ctime_ns = 1700000000123456789ull,
        .qemu_version = "10.0.13",
        .kernel_release = "6.1.0-27-amd64",
        .cmdline_fp = 0xfedcba9876543210ull,
        .stream_len = 0x0102030405060708ull - 1000,
    };
    return r;
}

/* Re-seal a record after editing it, as a buggy or future writer would. */
static void reseal(uint8_t *buf, size_t size)
{
    uint64_t c = XXH3_64bits(buf, size - 8);

    for (int i = 0; i < 8; i++) {
        buf[size - 8 + i] = (uint8_t)(c >> (8 * i));
    }
}

static void test_record_round_trip(void)
{
    CprRecord in = sample_record(7), out;
    uint8_t buf[CPR_BLOCK_SIZE] = { 0 };

    cpr_record_encode(&in, buf);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_OK);
    g_assert_cmpuint(out.version, ==, in.version);
    g_assert_cmpuint(out.generation, ==, in.generation);
    g_assert_cmpuint(out.flags, ==, in.flags);
    g_assert_cmpuint(out.payload_off, ==, in.payload_off);
    g_assert_cmpuint(out.payload_len, ==, in.payload_len);
    g_assert_cmpuint(out.payload_xxh3, ==, in.payload_xxh3);
    g_assert_cmpuint(out.ctime_ns, ==, in.ctime_ns);
    g_assert_cmpstr(out.qemu_version, ==, in.qemu_version);
    g_assert_cmpstr(out.kernel_release, ==, in.kernel_release);
    g_assert_cmpuint(out.cmdline_fp, ==, in.cmdline_fp);
    g_assert_cmpuint(out.stream_len, ==, in.stream_len);
    /* Little-endian at the documented offsets. */
    g_assert_cmpmem(buf, 8, CPR_REC_MAGIC, 8);
    g_assert_cmpuint(buf[16], ==, 7);
    g_assert_cmpuint(buf[32], ==, 0x88);
    g_assert_cmpuint(buf[39], ==, 0x11);
    g_assert_cmpstr((char *)buf + 64, ==, "10.0.13");
    g_assert_cmpstr((char *)buf + 96, ==, "6.1.0-27-amd64");
}

static void test_record_long_strings(void)
{
    CprRecord in = sample_record(1), out;
    uint8_t buf[CPR_REC_SIZE];

    memset(in.qemu_version, 'q', sizeof(in.qemu_version));
    memset(in.kernel_release, 'k', sizeof(in.kernel_release));
    cpr_record_encode(&in, buf);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_OK);
    g_assert_cmpuint(strlen(out.qemu_version), ==, CPR_QEMU_VERSION_LEN - 1);
    g_assert_cmpuint(strlen(out.kernel_release), ==,
                     CPR_KERNEL_RELEASE_LEN - 1);
}

static void test_record_every_bit_flip(void)
{
    CprRecord in = sample_record(3), out;
    uint8_t buf[CPR_REC_SIZE];

    cpr_record_encode(&in, buf);
    for (size_t i = 0; i < CPR_REC_SIZE * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                        CPR_DECODE_BAD);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
}

static void test_record_invalid_fields(void)
{
    CprRecord in = sample_record(2), out;
    uint8_t buf[CPR_REC_SIZE], zero[CPR_REC_SIZE] = { 0 };

    g_assert_cmpint(cpr_record_decode(zero, sizeof(zero), &out), ==,
                    CPR_DECODE_EMPTY);
    cpr_record_encode(&in, buf);
    g_assert_cmpint(cpr_record_decode(buf, CPR_REC_SIZE - 1, &out), ==,
                    CPR_DECODE_BAD);
    /* Unknown flag, generation 0, unterminated string, non-zero pad. */
    buf[24] |= 0x80; reseal(buf, CPR_REC_SIZE);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
    in.generation = 0; cpr_record_encode(&in, buf);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
    in.generation = 2; cpr_record_encode(&in, buf);
    memset(buf + 64, 'x', 32); reseal(buf, CPR_REC_SIZE);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
    cpr_record_encode(&in, buf);
    buf[165] = 1; reseal(buf, CPR_REC_SIZE);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
    /* A size field pointing past the buffer. */
    cpr_record_encode(&in, buf);
    buf[13] = 0x10;
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
}

static void test_record_too_new(void)
{
    CprRecord in = sample_record(9), out;
    uint8_t buf[CPR_REC_SIZE];

    in.version = CPR_REC_VERSION + 1;
    cpr_record_encode(&in, buf);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_TOO_NEW);
    g_assert_cmpuint(out.version, ==, CPR_REC_VERSION + 1);
    g_assert_cmpuint(out.generation, ==, 9);
}

static void test_superblock(void)
{
    CprSuperblock in = { .version = CPR_SB_VERSION,
                         .uuid = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                   13, 14, 15, 16 },
                         .ctime_ns = 123456789 }, out;
    uint8_t buf[CPR_BLOCK_SIZE] = { 0 };

    cpr_sb_encode(&in, buf);
    g_assert_cmpint(cpr_sb_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_OK);
    g_assert_cmpuint(out.version, ==, in.version);
    g_assert_cmpmem(out.uuid, 16, in.uuid, 16);
    g_assert_cmpuint(out.ctime_ns, ==, in.ctime_ns);
    for (size_t i = 0; i < CPR_SB_SIZE * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        g_assert_cmpint(cpr_sb_decode(buf, sizeof(buf), &out), ==,
                        CPR_DECODE_BAD);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    in.version = 2;
    cpr_sb_encode(&in, buf);
    g_assert_cmpint(cpr_sb_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_TOO_NEW);
    g_assert_cmpuint(out.version, ==, 2);
}

static void put_record(uint8_t *hdr, unsigned slot, uint64_t gen)
{
    CprRecord r = sample_record(gen);

    r.flags = 0;
    cpr_record_encode(&r, hdr + CPR_SLOT_OFFSET(slot));
}

static void test_slots(void)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE);
    CprSlots s;

    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, ==, -1);
    g_assert_cmpint(s.state[0], ==, CPR_DECODE_EMPTY);
    put_record(hdr, 1, 1);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, ==, 1);
    put_record(hdr, 0, 2);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, ==, 0);
    /* Torn newest: the older one stays. */
    hdr[CPR_SLOT_OFFSET(0) + 100] ^= 1;
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, ==, 1);
    g_assert_cmpint(s.state[0], ==, CPR_DECODE_BAD);
    /* A generation in the wrong slot is not trusted. */
    put_record(hdr, 0, 5);
    put_record(hdr, 1, 4);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, ==, -1);
    g_free(hdr);
}

static void test_fits(void)
{
    CprRecord r = sample_record(1);

    r.payload_off = CPR_PAYLOAD_AREA;
    r.payload_len = 100;
    g_assert_true(cpr_record_fits(&r, CPR_PAYLOAD_AREA + 100));
    g_assert_false(cpr_record_fits(&r, CPR_PAYLOAD_AREA + 99));
    r.payload_off = CPR_HEADER_SIZE;
    g_assert_false(cpr_record_fits(&r, 1ull << 40));
    r.payload_off = UINT64_MAX - 10;
    r.payload_len = 100;
    g_assert_false(cpr_record_fits(&r, UINT64_MAX));
    r.payload_off = CPR_PAYLOAD_AREA;
    r.payload_len = UINT64_MAX;
    g_assert_false(cpr_record_fits(&r, UINT64_MAX - 1));
}

static void test_random_bytes(void)
{
    GRand *rand = g_rand_new_with_seed(42);
    uint8_t *hdr = g_malloc(CPR_HEADER_SIZE);
    CprSuperblock sb;
    CprSlots s;

    for (int n = 0; n < 2000; n++) {
        for (size_t i = 0; i < CPR_HEADER_SIZE; i++) {
            hdr[i] = (uint8_t)g_rand_int(rand);
        }
        if (n % 2) {
            memcpy(hdr + CPR_SLOT_OFFSET(n % 4 / 2), CPR_REC_MAGIC, 8);
        }
        g_assert_cmpint(cpr_sb_decode(hdr, CPR_BLOCK_SIZE, &sb), ==,
                        CPR_DECODE_BAD);
        cpr_slots_decode(hdr, &s);
        g_assert_cmpint(s.newest, ==, -1);
    }
    g_free(hdr);
    g_rand_free(rand);
}

static void test_placement(void)
{
    const uint64_t MiB = 1 << 20, A = CPR_PAYLOAD_AREA;
    CprPlacement p;

    p = cpr_place_new(0, 0);
    g_assert_cmpuint(p.base, ==, A);
    g_assert_cmpuint(p.limit, ==, CPR_NO_LIMIT);
    p = cpr_place_new(A, 8 * MiB);     /* live low: go above, with slack */
    g_assert_cmpuint(p.base, ==, A + 12 * MiB);
    g_assert_cmpuint(p.limit, ==, CPR_NO_LIMIT);
    p = cpr_place_new(14 * MiB, 8 * MiB);  /* live high: use the room below */
    g_assert_cmpuint(p.base, ==, A);
    g_assert_cmpuint(p.limit, ==, 12 * MiB);
    g_assert_cmpuint(cpr_place_above(14 * MiB, 300 * 1024), ==, 16 * MiB);
    g_assert_cmpuint(cpr_grow_target(4 * MiB, 5 * MiB), ==, 8 * MiB);
    g_assert_cmpuint(cpr_grow_target(4 * MiB, 100 * MiB), ==, 100 * MiB);
    g_assert_cmpuint(cpr_grow_target(4 * MiB, 100 * MiB + 1), ==,
                     102 * MiB);
    g_assert_cmpuint(cpr_grow_target(4096 * MiB, 4097 * MiB), ==,
                     5120 * MiB);
    g_assert_cmpuint(cpr_grow_target(8 * MiB, 3 * MiB), ==, 8 * MiB);
}

#define ARGS(s) s, sizeof(s) - 1  /* like /proc: no extra NUL */

static void test_fingerprint(void)
{
    uint64_t plain = cpr_cmdline_fingerprint(ARGS("qemu\0-m\0" "4G\0"));

    g_assert_cmpuint(plain, ==, cpr_cmdline_fingerprint(
        ARGS("qemu\0-m\0" "4G\0-incoming\0pmem:/x\0")));
    g_assert_cmpuint(plain, ==, cpr_cmdline_fingerprint(
        ARGS("qemu\0-incoming=defer\0-m\0" "4G\0")));
    g_assert_cmpuint(plain, ==, cpr_cmdline_fingerprint(
        ARGS("qemu\0--incoming\0defer\0-m\0" "4G\0")));
    g_assert_cmpuint(plain, !=, cpr_cmdline_fingerprint(
        ARGS("qemu\0-m\0" "8G\0")));
    g_assert_cmpuint(plain, !=, cpr_cmdline_fingerprint(
        ARGS("qemu\0-m4G\0")));
    g_assert_cmpuint(plain, !=, cpr_cmdline_fingerprint(
        ARGS("qemu\0-m\0" "4G\0-incomingx\0")));
    /* A trailing "-incoming" without value must not read past the end. */
    g_assert_cmpuint(plain, ==, cpr_cmdline_fingerprint(
        ARGS("qemu\0-m\0" "4G\0-incoming")));
}

static void test_metadata(void)
{
    CprMetadata md;

    cpr_metadata_collect(&md, "10.0.13");
    g_assert_cmpstr(md.qemu_version, ==, "10.0.13");
    g_assert_cmpuint(strlen(md.kernel_release), >, 0);
    g_assert_cmpuint(md.cmdline_fp, !=, 0);
    g_assert_cmpuint(md.ctime_ns, >, 1600000000ull * 1000000000ull);
    /* The argument list the fingerprint was taken of is kept too. */
    g_assert_cmpuint(md.argv_len, >, 0);
    g_assert_cmpuint(md.cmdline_fp, ==, cpr_cmdline_fingerprint(md.argv,
                                                                 md.argv_len));
    cpr_metadata_free(&md);
}

/*
 * The version-3 payload checksum as FORMAT.md words it, written out
 * here independently: XXH3 of each 4 KiB page; XXH3 of each 1 MiB
 * block's page hashes, as 8 little-endian bytes each; XXH3 of the block
 * hashes, likewise.
 */
static uint64_t xxh3_of_le64(const uint64_t *v, size_t n)
{
    uint8_t *b = g_malloc(n * 8 + 1);
    uint64_t h;

    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 8; j++) {
            b[i * 8 + j] = (uint8_t)(v[i] >> (8 * j));
        }
    }
    h = XXH3_64bits(b, n * 8);
    g_free(b);
    return h;
}

static uint64_t reference_checksum(const uint8_t *p, size_t len)
{
    size_t nblocks = (len + (1u << 20) - 1) >> 20;
    uint64_t *blocks = g_new(uint64_t, nblocks + 1), h;

    for (size_t k = 0; k < nblocks; k++) {
        uint64_t pages[256];
        size_t n = 0;

        for (size_t o = k << 20; o < len && o < (k + 1) << 20; o += 4096) {
            pages[n++] = XXH3_64bits(p + o, MIN((size_t)4096, len - o));
        }
        blocks[k] = xxh3_of_le64(pages, n);
    }
    h = xxh3_of_le64(blocks, nblocks);
    g_free(blocks);
    return h;
}

static void test_checksum_v3(void)
{
    static const size_t lens[] = {
        0, 1, 4095, 4096, 4097, 8191, (1u << 20) - 1, 1u << 20,
        (1u << 20) + 1, (3u << 20) + 4096 * 7 + 5,
    };
    size_t max = lens[G_N_ELEMENTS(lens) - 1];
    uint8_t *p = g_malloc(max), zeros[4096] = { 0 };

    for (size_t i = 0; i < max; i++) {
        p[i] = (uint8_t)(i * 2654435761u >> 13);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        uint64_t want = reference_checksum(p, lens[i]);

        g_assert_cmphex(cpr_csum_payload(p, lens[i]), ==, want);
        g_assert_cmphex(cpr_record_checksum(3, p, lens[i]), ==, want);
        /* versions 1 and 2: the XXH3 of the whole payload */
        g_assert_cmphex(cpr_record_checksum(2, p, lens[i]), ==,
                        XXH3_64bits(p, lens[i]));
        g_assert_cmphex(cpr_record_checksum(1, p, lens[i]), ==,
                        XXH3_64bits(p, lens[i]));
    }
    g_assert_cmphex(cpr_csum_zero_page(), ==, XXH3_64bits(zeros, 4096));
    /* the empty payload: XXH3 of nothing */
    g_assert_cmphex(cpr_csum_payload(p, 0), ==, XXH3_64bits(NULL, 0));
    g_free(p);
}

/* Version 3 has version 2's layout; both decode, and so does 1. */
static void test_record_versions(void)
{
    for (uint32_t v = 1; v <= CPR_REC_VERSION; v++) {
        CprRecord in = sample_record(9), out;
        uint8_t buf[CPR_BLOCK_SIZE] = { 0 };

        in.version = v;
        if (v == 1) {
            in.stream_len = in.payload_len;
        }
        g_assert_cmpuint(cpr_record_encode(&in, buf), ==,
                         v == 1 ? CPR_REC_V1_SIZE : CPR_REC_V3_SIZE);
        g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &out), ==,
                        CPR_DECODE_OK);
        g_assert_cmpuint(out.version, ==, v);
        g_assert_cmpuint(out.stream_len, ==, in.stream_len);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/format/record/round-trip", test_record_round_trip);
    g_test_add_func("/format/record/long-strings", test_record_long_strings);
    g_test_add_func("/format/record/every-bit-flip",
                    test_record_every_bit_flip);
    g_test_add_func("/format/record/invalid-fields",
                    test_record_invalid_fields);
    g_test_add_func("/format/record/too-new", test_record_too_new);
    g_test_add_func("/format/record/versions", test_record_versions);
    g_test_add_func("/format/checksum-v3", test_checksum_v3);
    g_test_add_func("/format/superblock", test_superblock);
    g_test_add_func("/format/slots", test_slots);
    g_test_add_func("/format/fits", test_fits);
    g_test_add_func("/format/random-bytes", test_random_bytes);
    g_test_add_func("/placement", test_placement);
    g_test_add_func("/metadata/fingerprint", test_fingerprint);
    g_test_add_func("/metadata/collect", test_metadata);
    return g_test_run();
}
