/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cost of the largest VM description a restore accepts (FORMAT.md:
 * an argument list of at most 4 MiB and 65536 arguments): decoding it
 * and comparing it with this process's command line, as in_open does on
 * QEMU's main thread, for the shapes that cost most (every option
 * distinct, one option repeated, keyed and unkeyed, many options of
 * many units).  Prints the time and the peak memory of each; asserts
 * only a bound far above what it should take (under 100 ms here), so
 * that a quadratic comparison (13 s for 65535 distinct options) fails.
 * One argument more, or one byte more, is refused at decode.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binding.h"
#include "cmdline.h"
#include "vmdesc.h"

/* Far above the 100 ms the comparison must stay under, far below the
 * seconds a quadratic one takes: noise-proof. */
#define BOUND_MS 2000.0

static double now_ms(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* VmHWM or VmRSS of this process, in KiB. */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long v = -1;

    g_assert_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, field, strlen(field)) &&
            line[strlen(field)] == ':') {
            v = strtol(line + strlen(field) + 1, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

/* Reset VmHWM to the current RSS (proc(5), clear_refs "5"). */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "we");

    g_assert_nonnull(f);
    g_assert_cmpint(fputs("5", f), >=, 0);
    g_assert_cmpint(fclose(f), ==, 0);
}

/*
 * The largest argument list: argv[0] and 65535 arguments of 63 bytes
 * (4 MiB with the NULs), the i-th made by @fn(i, buf) and padded with
 * '.' (inside the option's value).
 */
typedef void (*ArgFn)(unsigned i, char *buf, size_t size);

static GString *largest(ArgFn fn)
{
    GString *s = g_string_new(NULL);
    const unsigned n = CPR_VMDESC_MAX_ARGS - 1;
    const size_t arg = (CPR_VMDESC_MAX_ARGV - 5) / n - 1;
    char buf[128];

    g_string_append_len(s, "qemu", 5);
    for (unsigned i = 0; i < n; i++) {
        size_t len;

        fn(i, buf, sizeof(buf));
        len = strlen(buf);
        g_assert_cmpuint(len, <=, arg);
        memset(buf + len, '.', arg - len);
        g_string_append_len(s, buf, (gssize)arg);
        g_string_append_c(s, 0);
    }
    g_assert_cmpuint(s->len, <=, CPR_VMDESC_MAX_ARGV);
    return s;
}

/* The description as a save encodes it, with @args. */
static uint8_t *encode(const GString *args, size_t *len)
{
    CprVmdesc d = {
        .version = CPR_VMDESC_VERSION, .seed = 1,
        .qemu_version = "10.2.2", .kernel_release = "6.18.0",
        .machine = "pc-q35-10.2", .cpu = "qemu64",
        .argv = (char *)args->str, .argv_len = args->len,
        .image_media = CPR_MEDIA_PMEM, .image_media_detail = "ext4",
    };
    uint8_t *enc = cpr_vmdesc_encode(&d, len);

    g_assert_nonnull(enc);
    return enc;
}

/*
 * Decode the description saved with @saved and compare it with @now as
 * in_open does; print the cost; the refusal must list @lines differences
 * (a refusal's first two lines are its header).
 */
static void measure(const char *shape, GString *saved, GString *now,
                    size_t lines)
{
    static const CprHost host = { "10.2.2", NULL, NULL };
    static const QemuTransportVm qvm = { .machine = "pc-q35-10.2",
                                         .cpu = "qemu64" };
    static const CprVm vm = { &qvm, NULL, 0 };
    static const CprRecord rec = { .version = 3, .generation = 1 };
    size_t len, got = 0;
    uint8_t *enc = encode(saved, &len);
    CprVmdesc *d = NULL;
    const char *why = NULL;
    char *err = NULL;
    long rss;
    double t0, c0, ms, cpu;
    int ret;

    cpr_cmdline_set_for_tests(now->str, now->len);
    reset_peak();
    rss = status_kib("VmRSS");
    t0 = now_ms(CLOCK_MONOTONIC);
    c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
    g_assert_cmpint(cpr_vmdesc_decode(enc, len, &d, &why), ==, CPR_VMDESC_OK);
    ret = cpr_binding_verify("/x/vm.cpr", &rec, d, &host, &vm, &err);
    ms = now_ms(CLOCK_MONOTONIC) - t0;
    cpu = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
    printf("# %s: %zu-byte description, %u arguments: decode and compare "
           "%.1f ms (%.1f ms of CPU), peak memory +%.1f MiB\n", shape, len,
           cpr_vmdesc_argc(d), ms, cpu, (status_kib("VmHWM") - rss) / 1024.0);
    if (lines) {
        g_assert_cmpint(ret, ==, -1);
        g_assert_nonnull(err);
        for (const char *p = err; (p = strchr(p, '\n')); p++) {
            got++;
        }
        g_assert_cmpuint(got, ==, lines);
    } else {
        g_assert_cmpint(ret, ==, 0);
    }
    g_assert_cmpfloat(ms, <, BOUND_MS);
    free(err);
    cpr_vmdesc_free(d);
    free(enc);
    cpr_cmdline_set_for_tests(NULL, 0);
    g_string_free(saved, TRUE);
    g_string_free(now, TRUE);
}

static void distinct_a(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-o%05u=a", i);
}

static void distinct_b(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-o%05u=b", i);
}

static void distinct_reversed(unsigned i, char *b, size_t n)
{
    distinct_a(CPR_VMDESC_MAX_ARGS - 2 - i, b, n);
}

/* 65535 options of distinct names (the crafted image): each
 * changed, then all present in the reverse order. */
static void test_distinct(void)
{
    /* The refusal shows at most 32 differences, and says how many more. */
    measure("65535 distinct options, each changed", largest(distinct_a),
            largest(distinct_b), 33);
    measure("65535 distinct options, reversed", largest(distinct_a),
            largest(distinct_reversed), 0);
}

static void keyed_a(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-device=x,id=d%05u", i);
}

static void keyed_reversed(unsigned i, char *b, size_t n)
{
    keyed_a(CPR_VMDESC_MAX_ARGS - 2 - i, b, n);
}

static void unkeyed_a(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-device=x%05u", i);
}

static void unkeyed_b(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-device=y%05u", i);
}

/* 256 options of 256 units each: every LCS table would be 256 x 256. */
static void grid_a(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-o%03u=%05u", i % 256, i);
}

static void grid_b(unsigned i, char *b, size_t n)
{
    snprintf(b, n, "-o%03u=%05u", i % 256, i + (i & 1));
}

/* One option 65535 times: matched by id and reordered; unkeyed and all
 * changed; and many options of many units. */
static void test_repeated(void)
{
    measure("65535 -device with ids, reversed", largest(keyed_a),
            largest(keyed_reversed), 1);
    measure("65535 -device without ids, each changed", largest(unkeyed_a),
            largest(unkeyed_b), 33);
    measure("256 options x 256 units, half changed", largest(grid_a),
            largest(grid_b), 33);
}

/* Beyond the bounds, the decoder refuses, saying which. */
static void test_refused(void)
{
    GString *args = largest(distinct_a);
    CprVmdesc *d = NULL;
    const char *why = NULL;
    size_t len;
    uint8_t *enc;

    g_string_append_len(args, "x", 2);      /* argument 65537 */
    enc = encode(args, &len);
    g_assert_cmpint(cpr_vmdesc_decode(enc, len, &d, &why), ==,
                    CPR_VMDESC_MALFORMED);
    g_assert_null(d);
    g_assert_cmpstr(why, ==, "more than 65536 arguments");
    free(enc);
    g_string_truncate(args, 0);
    while (args->len <= CPR_VMDESC_MAX_ARGV) {
        g_string_append_len(args, "0123456789abcdef", 16);
    }
    g_string_truncate(args, CPR_VMDESC_MAX_ARGV);
    g_string_append_c(args, 0);             /* 4 MiB + 1 */
    enc = encode(args, &len);
    g_assert_cmpint(cpr_vmdesc_decode(enc, len, &d, &why), ==,
                    CPR_VMDESC_MALFORMED);
    g_assert_cmpstr(why, ==, "argument list longer than 4 MiB");
    free(enc);
    g_string_free(args, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline-bounds/distinct", test_distinct);
    g_test_add_func("/cmdline-bounds/repeated", test_repeated);
    g_test_add_func("/cmdline-bounds/refused", test_refused);
    return g_test_run();
}
