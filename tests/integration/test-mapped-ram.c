/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mapped-ram through a transport plugin's seekable channel: a full-RAM
 * save (no x-ignore-shared: every page goes through the stream, at its
 * fixed offset) and a restore onto a fresh RAM file, with 0 and with 2
 * multifd channels.  qtest writes patterns all over guest RAM (single
 * words, a random block, 32 MiB of filled pages, the last word) and into
 * RTC CMOS; the destination must read them back, page by page.  The restore uses the same
 * capabilities, as mapped-ram requires.
 *
 * Run with $CPR_SCHEME=pmem on /dev/shm; with file: (stock QEMU) it is
 * the reference.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>

#define RAM_SIZE     "128M"
#define RAM_BYTES    (128ULL << 20)
#define BULK_ADDR    0x3000000ULL
#define BULK_LEN     (256 * 1024)
#define CMOS_FIRST   0x40
#define CMOS_COUNT   16

#define FILL_ADDR    0x4000000ULL     /* 32 chunks of 1 MiB, each filled */
#define FILL_CHUNKS  32
#define FILL_CHUNK   (1ULL << 20)

static const guint64 word_addrs[] = {
    0x1000, 0x7ffc, 0x200000, 0x1234560, 0x6fff000, RAM_BYTES - 4,
};

static guint32 word_value(guint i)
{
    return 0x5eed0000u ^ (i * 0x9e3779b9u);
}

static guint8 cmos_value(guint i)
{
    return 0x3c ^ (i * 37);
}

static guint8 fill_value(guint c)
{
    return 0x11 + c * 7;
}

static void fill_bulk(guint8 *buf)
{
    GRand *r = g_rand_new_with_seed(4242);

    for (gsize i = 0; i < BULK_LEN; i++) {
        buf[i] = g_rand_int(r);
    }
    g_rand_free(r);
}

static void write_patterns(Qtest *qt)
{
    g_autofree guint8 *bulk = g_malloc(BULK_LEN);
    GError *err = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        qtest_writel(qt, word_addrs[i], word_value(i), &err);
        g_assert_no_error(err);
    }
    fill_bulk(bulk);
    qtest_b64write(qt, BULK_ADDR, bulk, BULK_LEN, &err);
    g_assert_no_error(err);
    qtest_memset(qt, BULK_ADDR + BULK_LEN, 64 * 1024, 0x5a, &err);
    g_assert_no_error(err);
    for (guint c = 0; c < FILL_CHUNKS; c++) {
        qtest_memset(qt, FILL_ADDR + c * FILL_CHUNK, FILL_CHUNK,
                     fill_value(c), &err);
        g_assert_no_error(err);
    }
    for (guint i = 0; i < CMOS_COUNT; i++) {
        halt_vm_cmos_write(qt, CMOS_FIRST + i, cmos_value(i));
    }
}

static guint mismatches(Qtest *qt)
{
    g_autofree guint8 *want = g_malloc(BULK_LEN);
    g_autofree guint8 *got = g_malloc(BULK_LEN);
    g_autofree guint8 *set = g_malloc(64 * 1024);
    GError *err = NULL;
    guint bad = 0;

    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        guint32 v;

        qtest_readl(qt, word_addrs[i], &v, &err);
        g_assert_no_error(err);
        if (v != word_value(i)) {
            g_test_message("RAM 0x%" G_GINT64_MODIFIER "x: 0x%08x, want "
                           "0x%08x", word_addrs[i], v, word_value(i));
            bad++;
        }
    }
    fill_bulk(want);
    qtest_b64read(qt, BULK_ADDR, got, BULK_LEN, &err);
    g_assert_no_error(err);
    bad += memcmp(want, got, BULK_LEN) != 0;
    qtest_memread(qt, BULK_ADDR + BULK_LEN, got, 64 * 1024, &err);
    g_assert_no_error(err);
    memset(set, 0x5a, 64 * 1024);
    bad += memcmp(set, got, 64 * 1024) != 0;
    /* every page of a filled chunk: its first and its last byte */
    for (guint c = 0; c < FILL_CHUNKS; c++) {
        guint mismatched = 0;

        for (guint64 off = 0; off < FILL_CHUNK; off += 4096) {
            guint8 first, last;

            qtest_readb(qt, FILL_ADDR + c * FILL_CHUNK + off, &first, &err);
            g_assert_no_error(err);
            qtest_readb(qt, FILL_ADDR + c * FILL_CHUNK + off + 4095, &last,
                        &err);
            g_assert_no_error(err);
            mismatched += first != fill_value(c) || last != fill_value(c);
        }
        if (mismatched) {
            g_test_message("chunk %u: %u pages differ", c, mismatched);
            bad++;
        }
    }
    for (guint i = 0; i < CMOS_COUNT; i++) {
        if (halt_vm_cmos_read(qt, CMOS_FIRST + i) != cmos_value(i)) {
            bad++;
        }
    }
    return bad;
}

/* @args, plus the trace event of a plugin's multifd channels. */
static GStrv with_channel_trace(GStrv args, const char *uri)
{
    g_autofree char *scheme = cpr_plugin_scheme(uri);
    GPtrArray *a = g_ptr_array_new();

    for (guint i = 0; args[i]; i++) {
        g_ptr_array_add(a, g_strdup(args[i]));
    }
    if (scheme) {
        g_ptr_array_add(a, g_strdup("-trace"));
        g_ptr_array_add(a, g_strdup("transport_plugin_new_channel"));
    }
    g_ptr_array_add(a, NULL);
    g_strfreev(args);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

/* A transport plugin's channels: as many multifd ones as asked for. */
static void check_channels(QemuProc *p, const char *uri, guint channels)
{
    g_autofree char *scheme = cpr_plugin_scheme(uri);
    g_autofree char *log = qemu_proc_log(p);
    guint n = 0;

    if (!scheme) {
        return;
    }
    for (const char *l = log; (l = strstr(l, "transport_plugin_new_channel"));
         l++) {
        n++;
    }
    g_assert_cmpuint(n, ==, channels);
}

static void run(guint channels)
{
    const CprSetup setup = {
        .ignore_shared = FALSE, .mapped_ram = TRUE,
        .multifd_channels = channels,
    };
    g_autofree char *dir = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *state = g_build_filename(dir, "vm.cpr", NULL);
    g_autofree char *uri = test_env_uri(state);
    g_auto(GStrv) src_args = with_channel_trace(
        halt_vm_args(dir, "ram-src", RAM_SIZE), uri);
    g_auto(GStrv) dst_args = with_channel_trace(
        halt_vm_args(dir, "ram-dst", RAM_SIZE), uri);
    QemuProcOpts opts = {
        .binary = test_env_qemu(), .args = (const char *const *)src_args,
        .dir = dir, .name = "src", .qtest = TRUE,
    };
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    GError *err = NULL;
    CprSample t;

    g_test_message("qemu %s, uri %s, %u multifd channels", opts.binary, uri,
                   channels);
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    write_patterns(qemu_proc_qtest(src));
    g_assert_cmpuint(mismatches(qemu_proc_qtest(src)), ==, 0);
    cpr_save(src, &setup, uri, &t, &err);
    g_assert_no_error(err);
    g_test_message("pause %.2f ms, %.0f bytes", t.pause_us / 1e3,
                   t.stream_bytes);
    check_channels(src, uri, channels);
    g_clear_pointer(&src, qemu_proc_free);

    /* The RAM must come from the stream: a new, empty RAM file. */
    opts.args = (const char *const *)dst_args;
    opts.name = "dst";
    dst = cpr_restore(&opts, &setup, uri, &t, &err);
    g_assert_no_error(err);
    g_test_message("restore %.2f ms", t.incoming_us / 1e3);
    g_assert_cmpuint(mismatches(qemu_proc_qtest(dst)), ==, 0);
    check_channels(dst, uri, channels);
    g_clear_pointer(&dst, qemu_proc_free);
    test_env_rmtree(dir);
}

static void test_no_multifd(void)
{
    run(0);
}

static void test_two_channels(void)
{
    run(2);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mapped-ram/full-ram/0-channels", test_no_multifd);
    g_test_add_func("/mapped-ram/full-ram/2-channels", test_two_channels);
    return g_test_run();
}
