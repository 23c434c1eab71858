/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save helper's status block (FORMAT.md, "Save helper status"): its
 * encoding, what a damaged or newer block decodes as, and the lock that
 * tells `wait` whether the helper still runs.
 */
#include "helper-status.h"
#include "le.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

static CprHelperStatus sample(void)
{
    CprHelperStatus st = {
        .attempt = 7, .state = CPR_HS_FAILED, .pid = 4242,
        .generation = 12, .stream_len = 163682,
        .start_ns = 1700000000000000000ull, .end_ns = 1700000000500000000ull,
    };

    strcpy(st.id, "host-update.42");
    strcpy(st.message, "the stream is incomplete");
    return st;
}

static void test_roundtrip(void)
{
    CprHelperStatus st = sample(), out;
    uint8_t buf[CPR_HS_LOCK_LEN] = { 0 };

    cpr_hs_encode(&st, buf);
    g_assert_cmpmem(buf, 8, CPR_HS_MAGIC, 8);
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==, CPR_DECODE_OK);
    g_assert_cmpmem(&st, sizeof(st), &out, sizeof(out));
    /* the layout FORMAT.md documents */
    g_assert_cmpuint(cpr_get32(buf + 8), ==, 1);
    g_assert_cmpuint(cpr_get32(buf + 12), ==, 512);
    g_assert_cmpuint(cpr_get64(buf + 16), ==, 7);
    g_assert_cmpuint(cpr_get32(buf + 24), ==, CPR_HS_FAILED);
    g_assert_cmpuint(cpr_get32(buf + 28), ==, 4242);
    g_assert_cmpuint(cpr_get64(buf + 32), ==, 12);
    g_assert_cmpuint(cpr_get64(buf + 40), ==, 163682);
    g_assert_cmpstr((char *)buf + 64, ==, "host-update.42");
    g_assert_cmpstr((char *)buf + 128, ==, "the stream is incomplete");
    g_assert_cmpuint(cpr_get64(buf + 504), ==, XXH3_64bits(buf, 504));
}

static void test_damage(void)
{
    CprHelperStatus st = sample(), out;
    uint8_t buf[CPR_HS_LOCK_LEN] = { 0 };
    uint8_t zero[CPR_HS_LOCK_LEN] = { 0 };

    g_assert_cmpint(cpr_hs_decode(zero, sizeof(zero), &out), ==,
                    CPR_DECODE_EMPTY);
    cpr_hs_encode(&st, buf);
    /* any flipped bit of the 512 bytes */
    for (guint i = 0; i < CPR_HS_SIZE * 8; i += 3) {
        buf[i / 8] ^= 1u << (i % 8);
        g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==,
                        CPR_DECODE_BAD);
        buf[i / 8] ^= 1u << (i % 8);
    }
    g_assert_cmpint(cpr_hs_decode(buf, CPR_HS_SIZE - 1, &out), ==,
                    CPR_DECODE_BAD);
    /* a state that does not exist, with a valid checksum */
    cpr_put32(buf + 24, 9);
    cpr_put64(buf + 504, XXH3_64bits(buf, 504));
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
    /* an id without its NUL */
    cpr_hs_encode(&st, buf);
    memset(buf + 64, 'x', CPR_HS_ID_LEN);
    cpr_put64(buf + 504, XXH3_64bits(buf, 504));
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
}

/* A later version may grow the block (up to 4 KiB) inside the envelope. */
static void test_too_new(void)
{
    CprHelperStatus st = sample(), out;
    uint8_t buf[CPR_HS_LOCK_LEN] = { 0 };

    cpr_hs_encode(&st, buf);
    cpr_put32(buf + 8, 2);
    cpr_put32(buf + 12, 1024);
    cpr_put64(buf + 1016, XXH3_64bits(buf, 1016));
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_TOO_NEW);
    buf[700] ^= 1;
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==,
                    CPR_DECODE_BAD);
}

static void test_strings_cut(void)
{
    CprHelperStatus st = sample(), out;
    uint8_t buf[CPR_HS_SIZE];
    char big[1000];

    /* "é" is two bytes: a cut never leaves half of one */
    for (guint i = 0; i + 2 < sizeof(big); i += 2) {
        memcpy(big + i, "\xc3\xa9", 2);
    }
    big[sizeof(big) - 2] = 0;
    cpr_hs_copy_str(st.message, sizeof(st.message), big + 1);
    cpr_hs_encode(&st, buf);
    g_assert_cmpint(cpr_hs_decode(buf, sizeof(buf), &out), ==, CPR_DECODE_OK);
    g_assert_true(g_utf8_validate(out.message + 1, -1, NULL));
    g_assert_cmpuint(strlen(out.message), <, CPR_HS_MSG_LEN);
}

static void test_file_and_lock(void)
{
    g_autofree char *dir = g_dir_make_tmp("hs-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "img", NULL);
    CprHelperStatus st = sample(), out;
    CprDecode dec;
    int a, b;

    a = open(path, O_RDWR | O_CREAT, 0600);
    b = open(path, O_RDONLY);
    g_assert_cmpint(a, >=, 0);
    g_assert_cmpint(b, >=, 0);
    /* a file too short to hold a block reads as empty */
    g_assert_cmpint(cpr_hs_read(b, &out, &dec), ==, 0);
    g_assert_cmpint(dec, ==, CPR_DECODE_EMPTY);

    g_assert_cmpint(cpr_hs_lock(a, F_WRLCK, 0), ==, 0);
    g_assert_cmpint(cpr_hs_write(a, &st), ==, 0);
    g_assert_true(cpr_hs_write_locked(b));
    g_assert_false(cpr_hs_write_locked(a));     /* not against itself */
    errno = 0;
    g_assert_cmpint(cpr_hs_lock(b, F_RDLCK, 50), ==, -1);
    g_assert_cmpint(errno, ==, ETIMEDOUT);
    /* the lock ends with its descriptor, as with a killed helper */
    close(a);
    g_assert_false(cpr_hs_write_locked(b));
    g_assert_cmpint(cpr_hs_lock(b, F_RDLCK, 0), ==, 0);
    g_assert_cmpint(cpr_hs_read(b, &out, &dec), ==, 0);
    g_assert_cmpint(dec, ==, CPR_DECODE_OK);
    g_assert_cmpuint(out.attempt, ==, 7);
    /* readers share */
    a = open(path, O_RDWR);
    g_assert_cmpint(cpr_hs_lock(a, F_RDLCK, 0), ==, 0);
    g_assert_cmpint(cpr_hs_lock(a, F_WRLCK, 30), ==, -1);
    cpr_hs_unlock(b);
    g_assert_cmpint(cpr_hs_lock(a, F_WRLCK, 0), ==, 0);
    /* and a flock() on the file is another matter entirely */
    g_assert_cmpint(flock(b, LOCK_EX | LOCK_NB), ==, 0);
    close(a);
    close(b);
    g_unlink(path);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/helper-status/roundtrip", test_roundtrip);
    g_test_add_func("/helper-status/damage", test_damage);
    g_test_add_func("/helper-status/too-new", test_too_new);
    g_test_add_func("/helper-status/strings-cut", test_strings_cut);
    g_test_add_func("/helper-status/file-and-lock", test_file_and_lock);
    return g_test_run();
}
