/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM description (FORMAT.md): round trips, the byte layout, and a
 * decoder that refuses what it must and never reads out of bounds (the
 * ASan build checks every case here; the fuzzer does the rest).  And
 * the pages a fingerprint samples.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "fingerprint.h"
#include "vmdesc.h"

static const char argv_text[] = "qemu\0-m\0" "512M\0-device\0virtio-rng-pci\0";

/* Two blocks: a file (with a birth time) and anonymous memory. */
static CprVmdesc *sample(void)
{
    CprVmdesc *d = g_new0(CprVmdesc, 1);
    CprVmdescBlock *k;

    d->version = CPR_VMDESC_VERSION;
    d->seed = 0x0123456789abcdefull;
    d->qemu_version = strdup("10.0.13");
    d->kernel_release = strdup("6.18.0");
    d->machine = strdup("pc-q35-10.0");
    d->cpu = strdup("qemu64");
    d->argv_len = sizeof(argv_text) - 1;
    d->argv = malloc(d->argv_len);
    memcpy(d->argv, argv_text, d->argv_len);
    d->image_media = CPR_MEDIA_PMEM;
    d->image_media_detail = strdup("xfs, DAX, MAP_SYNC");
    d->nr_blocks = 2;
    d->blocks = calloc(2, sizeof(*d->blocks));
    k = &d->blocks[0];
    k->name = strdup("pc.ram");
    k->size = 1ull << 30;
    k->flags = CPR_RAM_SHARED | CPR_RAM_PMEM;
    k->fd_offset = 4096;
    k->media = CPR_MEDIA_PMEM;
    k->media_detail = strdup("xfs, DAX, MAP_SYNC");
    k->has_file = true;
    k->file = (CprVmdescFile){ 0x10305, 77, (1ull << 30) + 4096,
                               1700000000, 123456789, 1,
                               strdup("/mnt/pmem/vm.ram"), true, 1600000000,
                               5 };
    k->nr_samples = cpr_fingerprint_pages(d->seed, k->name, k->size,
                                          (uint64_t[64]){ 0 });
    for (uint32_t i = 0; i < k->nr_samples; i++) {
        k->samples[i] = (CprVmdescSample){ i * 1000, 0xabc0 + i };
    }
    k = &d->blocks[1];
    k->name = strdup("/objects/anon");
    k->size = 3 * 4096 + 5;
    k->flags = CPR_RAM_SHARED;
    k->media = CPR_MEDIA_VOLATILE;
    k->media_detail = strdup("anonymous memory");
    k->nr_samples = 4;
    for (uint32_t i = 0; i < 4; i++) {
        k->samples[i] = (CprVmdescSample){ i, 0x1000 + i };
    }
    return d;
}

static uint8_t *encode(const CprVmdesc *d, size_t *len)
{
    uint8_t *b = cpr_vmdesc_encode(d, len);

    g_assert_nonnull(b);
    return b;
}

static CprVmdescResult decode(const uint8_t *buf, size_t len, CprVmdesc **d)
{
    const char *why = NULL;
    CprVmdescResult r = cpr_vmdesc_decode(buf, len, d, &why);

    g_assert_true((r == CPR_VMDESC_OK) == (*d != NULL));
    g_assert_true(r == CPR_VMDESC_OK || why != NULL);
    return r;
}

static void assert_same(const CprVmdesc *a, const CprVmdesc *b)
{
    g_assert_cmpuint(a->version, ==, b->version);
    g_assert_cmpuint(a->seed, ==, b->seed);
    g_assert_cmpstr(a->qemu_version, ==, b->qemu_version);
    g_assert_cmpstr(a->kernel_release, ==, b->kernel_release);
    g_assert_cmpstr(a->machine, ==, b->machine);
    g_assert_cmpstr(a->cpu, ==, b->cpu);
    g_assert_cmpmem(a->argv, a->argv_len, b->argv, b->argv_len);
    g_assert_cmpuint(a->image_media, ==, b->image_media);
    g_assert_cmpstr(a->image_media_detail, ==, b->image_media_detail);
    g_assert_cmpuint(a->nr_blocks, ==, b->nr_blocks);
    for (uint32_t i = 0; i < a->nr_blocks; i++) {
        const CprVmdescBlock *x = &a->blocks[i], *y = &b->blocks[i];

        g_assert_cmpstr(x->name, ==, y->name);
        g_assert_cmpuint(x->size, ==, y->size);
        g_assert_cmpuint(x->flags, ==, y->flags);
        g_assert_cmpuint(x->fd_offset, ==, y->fd_offset);
        g_assert_cmpuint(x->media, ==, y->media);
        g_assert_cmpstr(x->media_detail, ==, y->media_detail);
        g_assert_cmpint(x->has_file, ==, y->has_file);
        if (x->has_file) {
            g_assert_cmpuint(x->file.dev, ==, y->file.dev);
            g_assert_cmpuint(x->file.ino, ==, y->file.ino);
            g_assert_cmpuint(x->file.size, ==, y->file.size);
            g_assert_cmpint(x->file.mtime_sec, ==, y->file.mtime_sec);
            g_assert_cmpuint(x->file.mtime_nsec, ==, y->file.mtime_nsec);
            g_assert_cmpuint(x->file.nlink, ==, y->file.nlink);
            g_assert_cmpstr(x->file.path, ==, y->file.path);
            g_assert_cmpint(x->file.has_birth, ==, y->file.has_birth);
            g_assert_cmpint(x->file.birth_sec, ==, y->file.birth_sec);
            g_assert_cmpuint(x->file.birth_nsec, ==, y->file.birth_nsec);
        }
        g_assert_cmpuint(x->nr_samples, ==, y->nr_samples);
        g_assert_cmpmem(x->samples, x->nr_samples * sizeof(x->samples[0]),
                        y->samples, y->nr_samples * sizeof(y->samples[0]));
    }
}

static void test_round_trip(void)
{
    CprVmdesc *in = sample(), *out = NULL;
    size_t len, len2;
    uint8_t *buf = encode(in, &len), *again;

    g_assert_cmpint(decode(buf, len, &out), ==, CPR_VMDESC_OK);
    assert_same(in, out);
    g_assert_cmpuint(cpr_vmdesc_argc(out), ==, 5);
    /* Deterministic bytes. */
    again = encode(out, &len2);
    g_assert_cmpmem(buf, len, again, len2);
    /* The documented header and first entry. */
    g_assert_cmpmem(buf, 8, CPR_VMDESC_MAGIC, 8);
    g_assert_cmpuint(buf[8], ==, 2);
    g_assert_cmpuint(buf[12] | buf[13] | buf[14] | buf[15], ==, 0);
    g_assert_cmpuint(buf[16], ==, 1);           /* tag 1: seed */
    g_assert_cmpuint(buf[20], ==, 8);           /* length 8 */
    g_assert_cmpuint(buf[24], ==, 0xef);        /* little-endian */
    g_assert_cmpuint(buf[31], ==, 0x01);
    free(again);
    free(buf);
    cpr_vmdesc_free(in);
    cpr_vmdesc_free(out);
}

/* An empty VM (no blocks, empty strings and argument list) is valid. */
static void test_empty_vm(void)
{
    CprVmdesc in = { .version = 1, .qemu_version = "", .kernel_release = "",
                     .machine = "", .cpu = "", .argv = NULL,
                     .image_media = CPR_MEDIA_VOLATILE,
                     .image_media_detail = "tmpfs" }, *out = NULL;
    size_t len;
    uint8_t *buf = encode(&in, &len);

    g_assert_cmpint(decode(buf, len, &out), ==, CPR_VMDESC_OK);
    g_assert_cmpuint(out->nr_blocks, ==, 0);
    g_assert_cmpuint(out->argv_len, ==, 0);
    g_assert_cmpuint(cpr_vmdesc_argc(out), ==, 0);
    cpr_vmdesc_free(out);
    free(buf);
}

/* Every prefix and every single-byte change: no crash, no read outside
 * the buffer (each decode gets an exact-size copy, so ASan sees it). */
static void test_every_prefix_and_flip(void)
{
    CprVmdesc *in = sample(), *out;
    size_t len;
    uint8_t *buf = encode(in, &len);
    unsigned ok_prefixes = 0;

    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = g_memdup2(buf, n ? n : 1);

        out = NULL;
        if (decode(copy, n, &out) == CPR_VMDESC_OK) {
            /* Only a cut between whole top-level entries decodes (the
             * payload checksum and the record's length guard those). */
            g_assert_cmpuint(out->nr_blocks, <, in->nr_blocks);
            ok_prefixes++;
        }
        cpr_vmdesc_free(out);
        g_free(copy);
    }
    g_assert_cmpuint(ok_prefixes, <=, 2);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t *copy = g_memdup2(buf, len);

            copy[i] ^= (uint8_t)(1u << bit);
            out = NULL;
            decode(copy, len, &out);
            cpr_vmdesc_free(out);
            g_free(copy);
        }
    }
    free(buf);
    cpr_vmdesc_free(in);
}

/* Hand-built descriptions: header, then entries. */
typedef struct Raw {
    GByteArray *b;
} Raw;

static void raw_u32(GByteArray *b, uint32_t v)
{
    uint8_t p[4] = { v, v >> 8, v >> 16, v >> 24 };

    g_byte_array_append(b, p, 4);
}

static void raw_u64(GByteArray *b, uint64_t v)
{
    raw_u32(b, (uint32_t)v);
    raw_u32(b, (uint32_t)(v >> 32));
}

static void raw_entry(GByteArray *b, uint32_t tag, const void *v, uint32_t n)
{
    raw_u32(b, tag);
    raw_u32(b, n);
    g_byte_array_append(b, v, n);
}

static GByteArray *raw_header(uint32_t version, uint32_t flags)
{
    GByteArray *b = g_byte_array_new();

    g_byte_array_append(b, (const uint8_t *)CPR_VMDESC_MAGIC, 8);
    raw_u32(b, version);
    raw_u32(b, flags);
    return b;
}

/* The required top-level entries, each once. */
static void raw_top(GByteArray *b)
{
    uint8_t seed[8] = { 1 }, media[4 + 5] = { 3, 0, 0, 0, 't', 'm', 'p',
                                               'f', 's' };

    raw_entry(b, 1, seed, 8);
    raw_entry(b, 2, "10.0", 4);
    raw_entry(b, 3, "6.18", 4);
    raw_entry(b, 4, "pc", 2);
    raw_entry(b, 5, "qemu64", 6);
    raw_entry(b, 6, "qemu\0", 5);
    raw_entry(b, 7, media, sizeof(media));
}

/* A block entry of @size bytes with @samples samples, plus @extra
 * bytes of sub-entries appended inside it. */
static void raw_block(GByteArray *b, const char *name, uint64_t size,
                      uint32_t samples, const GByteArray *extra)
{
    GByteArray *k = g_byte_array_new();
    uint8_t media[4] = { 3 };

    raw_entry(k, 1, name, (uint32_t)strlen(name));
    raw_u32(k, 2); raw_u32(k, 8); raw_u64(k, size);
    raw_u32(k, 3); raw_u32(k, 4); raw_u32(k, 1);
    raw_u32(k, 4); raw_u32(k, 8); raw_u64(k, 0);
    raw_entry(k, 5, media, 4);
    raw_u32(k, 8); raw_u32(k, 8 + 16 * samples);
    raw_u32(k, 4096); raw_u32(k, samples);
    for (uint32_t i = 0; i < samples; i++) {
        raw_u64(k, i);
        raw_u64(k, i);
    }
    if (extra) {
        g_byte_array_append(k, extra->data, extra->len);
    }
    raw_entry(b, 8, k->data, k->len);
    g_byte_array_unref(k);
}

static CprVmdescResult raw_decode(GByteArray *b, const char *want_why)
{
    uint8_t *copy = g_memdup2(b->data, b->len ? b->len : 1);
    const char *why = NULL;
    CprVmdesc *d = NULL;
    CprVmdescResult r = cpr_vmdesc_decode(copy, b->len, &d, &why);

    if (want_why && (!why || !strstr(why, want_why))) {
        g_error("decoder said \"%s\", expected \"%s\"", why ? why : "ok",
                want_why);
    }
    cpr_vmdesc_free(d);
    g_free(copy);
    g_byte_array_unref(b);
    return r;
}

static void test_hostile(void)
{
    GByteArray *b, *x;
    uint8_t seed[8] = { 0 };

    /* The minimal valid one, and an unknown (later) entry skipped. */
    b = raw_header(1, 0);
    raw_top(b);
    g_assert_cmpint(raw_decode(b, NULL), ==, CPR_VMDESC_OK);
    b = raw_header(1, 0);
    raw_top(b);
    raw_entry(b, 99, "future", 6);
    raw_block(b, "pc.ram", 4096 * 3, 3, NULL);
    g_assert_cmpint(raw_decode(b, NULL), ==, CPR_VMDESC_OK);
    /* Header. */
    g_assert_cmpint(raw_decode(raw_header(3, 0), "too new"), ==,
                    CPR_VMDESC_TOO_NEW);
    g_assert_cmpint(raw_decode(raw_header(0, 0), "bad header"), ==,
                    CPR_VMDESC_MALFORMED);
    g_assert_cmpint(raw_decode(raw_header(1, 1), "bad header"), ==,
                    CPR_VMDESC_MALFORMED);
    b = g_byte_array_new();
    g_assert_cmpint(raw_decode(b, "missing"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    b->data[0] = 'X';
    g_assert_cmpint(raw_decode(b, "bad magic"), ==, CPR_VMDESC_MALFORMED);
    /* Missing and duplicate entries. */
    g_assert_cmpint(raw_decode(raw_header(1, 0), "required"), ==,
                    CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_entry(b, 1, seed, 8);
    g_assert_cmpint(raw_decode(b, "duplicate"), ==, CPR_VMDESC_MALFORMED);
    /* Lengths: past the end, huge, wrong for the type, truncated header. */
    b = raw_header(1, 0);
    raw_top(b);
    raw_u32(b, 2);
    raw_u32(b, 0xffffffffu);
    g_assert_cmpint(raw_decode(b, "longer than"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_u32(b, 2);
    g_assert_cmpint(raw_decode(b, "truncated entry"), ==,
                    CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_entry(b, 1, seed, 7);
    g_assert_cmpint(raw_decode(b, "bad entry length"), ==,
                    CPR_VMDESC_MALFORMED);
    /* Strings: NUL inside, too long; argv not NUL-terminated. */
    b = raw_header(1, 0);
    raw_entry(b, 4, "p\0c", 3);
    g_assert_cmpint(raw_decode(b, "NUL inside"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    x = g_byte_array_new();
    g_byte_array_set_size(x, 257);
    memset(x->data, 'a', 257);
    raw_entry(b, 5, x->data, 257);
    g_byte_array_unref(x);
    g_assert_cmpint(raw_decode(b, "too long"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_entry(b, 6, "qemu", 4);
    g_assert_cmpint(raw_decode(b, "not NUL-terminated"), ==,
                    CPR_VMDESC_MALFORMED);
    /* Media classes outside 1..3. */
    b = raw_header(1, 0);
    raw_entry(b, 7, (uint8_t[4]){ 4 }, 4);
    g_assert_cmpint(raw_decode(b, "unknown media"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_entry(b, 7, (uint8_t[3]){ 1 }, 3);
    g_assert_cmpint(raw_decode(b, "media entry length"), ==,
                    CPR_VMDESC_MALFORMED);
    /* Blocks: sample count against the size, pages outside, twice,
     * names empty or repeated, unknown flags, half a file identity. */
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096 * 3, 2, NULL);
    g_assert_cmpint(raw_decode(b, "wrong number of sampled"), ==,
                    CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096 * 2, 3, NULL);
    g_assert_cmpint(raw_decode(b, NULL), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096 * 3, 65, NULL);
    g_assert_cmpint(raw_decode(b, "bad sample count"), ==,
                    CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "", 4096, 1, NULL);
    g_assert_cmpint(raw_decode(b, "empty name"), ==, CPR_VMDESC_MALFORMED);
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096, 1, NULL);
    raw_block(b, "pc.ram", 4096, 1, NULL);
    g_assert_cmpint(raw_decode(b, "same name"), ==, CPR_VMDESC_MALFORMED);
    x = g_byte_array_new();
    raw_entry(x, 7, "/x", 2);
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096, 1, x);
    g_byte_array_unref(x);
    g_assert_cmpint(raw_decode(b, "without a path"), ==, CPR_VMDESC_MALFORMED);
    x = g_byte_array_new();
    raw_u32(x, 3); raw_u32(x, 4); raw_u32(x, 8);    /* a second FLAGS */
    b = raw_header(1, 0);
    raw_top(b);
    raw_block(b, "pc.ram", 4096, 1, x);
    g_byte_array_unref(x);
    g_assert_cmpint(raw_decode(b, "duplicate"), ==, CPR_VMDESC_MALFORMED);
    /* A block entry whose sub-entry overruns the block (but not the
     * description). */
    b = raw_header(1, 0);
    raw_top(b);
    raw_u32(b, 8);
    raw_u32(b, 12);
    raw_u32(b, 1);
    raw_u32(b, 100);
    raw_u32(b, 0);
    raw_entry(b, 99, "................................................"
              "..................................................", 98);
    g_assert_cmpint(raw_decode(b, "longer than"), ==, CPR_VMDESC_MALFORMED);
}

/* More blocks than the bound, each as small as a block can be. */
static void test_too_many_blocks(void)
{
    GByteArray *b = raw_header(1, 0);

    raw_top(b);
    for (unsigned i = 0; i <= CPR_VMDESC_MAX_BLOCKS; i++) {
        char name[16];

        snprintf(name, sizeof(name), "b%u", i);
        raw_block(b, name, 0, 0, NULL);
    }
    g_assert_cmpint(raw_decode(b, "too many RAM blocks"), ==,
                    CPR_VMDESC_MALFORMED);
}

static void test_fingerprint_pages(void)
{
    uint64_t a[64], b[64], c[64];
    uint64_t pages = (64ull << 30) / 4096;
    uint32_t n = cpr_fingerprint_pages(42, "pc.ram", 64ull << 30, a);

    g_assert_cmpuint(n, ==, 64);
    g_assert_cmpuint(a[0], ==, 0);
    g_assert_cmpuint(a[63], ==, pages - 1);
    for (int i = 1; i < 64; i++) {
        g_assert_cmpuint(a[i - 1], <, a[i]);
    }
    /* Deterministic from the seed and the name; both matter. */
    g_assert_cmpuint(cpr_fingerprint_pages(42, "pc.ram", 64ull << 30, b),
                     ==, 64);
    g_assert_cmpmem(a, sizeof(a), b, sizeof(b));
    cpr_fingerprint_pages(43, "pc.ram", 64ull << 30, b);
    cpr_fingerprint_pages(42, "pc.ram1", 64ull << 30, c);
    g_assert_true(memcmp(a, b, sizeof(a)) != 0);
    g_assert_true(memcmp(a, c, sizeof(a)) != 0);
    /* Small blocks are sampled whole; 65 pages: 64 of them, distinct. */
    g_assert_cmpuint(cpr_fingerprint_pages(1, "x", 0, a), ==, 0);
    g_assert_cmpuint(cpr_fingerprint_pages(1, "x", 1, a), ==, 1);
    g_assert_cmpuint(cpr_fingerprint_pages(1, "x", 64 * 4096, a), ==, 64);
    g_assert_cmpuint(a[63], ==, 63);
    g_assert_cmpuint(cpr_fingerprint_pages(1, "x", 65 * 4096, a), ==, 64);
    g_assert_cmpuint(a[0], ==, 0);
    g_assert_cmpuint(a[63], ==, 64);
    for (int i = 1; i < 64; i++) {
        g_assert_cmpuint(a[i - 1], <, a[i]);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vmdesc/round-trip", test_round_trip);
    g_test_add_func("/vmdesc/empty-vm", test_empty_vm);
    g_test_add_func("/vmdesc/every-prefix-and-flip",
                    test_every_prefix_and_flip);
    g_test_add_func("/vmdesc/hostile", test_hostile);
    g_test_add_func("/vmdesc/too-many-blocks", test_too_many_blocks);
    g_test_add_func("/vmdesc/fingerprint-pages", test_fingerprint_pages);
    return g_test_run();
}
