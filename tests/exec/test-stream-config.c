/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stream-config.c: the configuration section at a stream's start tells
 * the exec: helper whether x-ignore-shared was on.  Built here byte by
 * byte as QEMU 10.0 and 10.2 write it (the layout is in stream-config.c;
 * test-exec-helper.c runs it on Debian's QEMU's real streams, both ways).
 * Every prefix of a valid start is "unknown", never read past (ASan).
 */
#include "stream-config.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

static void put32(GByteArray *b, guint32 v)
{
    guint8 x[4] = { v >> 24, v >> 16, v >> 8, v };

    g_byte_array_append(b, x, 4);
}

static void put8(GByteArray *b, guint8 v)
{
    g_byte_array_append(b, &v, 1);
}

static void put_str8(GByteArray *b, const char *s)
{
    put8(b, (guint8)strlen(s));
    g_byte_array_append(b, (const guint8 *)s, strlen(s));
}

static void subsection(GByteArray *b, const char *name)
{
    put8(b, 5);
    put_str8(b, name);
    put32(b, 1);
}

/* A stream start with @caps (NULL-terminated) and the next section. */
static GByteArray *stream(const char *const *caps, bool uuid)
{
    GByteArray *b = g_byte_array_new();
    guint n = caps ? g_strv_length((char **)caps) : 0;

    put32(b, 0x5145564d);
    put32(b, 3);
    put8(b, 7);
    put32(b, strlen("pc-q35-10.0"));
    g_byte_array_append(b, (const guint8 *)"pc-q35-10.0", 11);
    subsection(b, "configuration/target-page-bits");
    put32(b, 12);
    if (caps) {
        subsection(b, "configuration/capabilities");
        put32(b, n);
        for (guint i = 0; i < n; i++) {
            put_str8(b, caps[i]);
        }
    }
    if (uuid) {
        subsection(b, "configuration/uuid");
        g_byte_array_append(b, (const guint8 *)"0123456789abcdef", 16);
    }
    put8(b, 1);                 /* QEMU_VM_SECTION_START of "ram" */
    put32(b, 2);
    return b;
}

static int parse(GByteArray *b, size_t len)
{
    /* An exact-size copy: ASan sees a read past @len. */
    guint8 *copy = g_memdup2(b->data, len ? len : 1);
    int r = cpr_stream_ignores_shared(copy, len);

    g_free(copy);
    return r;
}

static void test_ignore_shared(void)
{
    static const char *const on[] = { "x-ignore-shared", NULL };
    static const char *const both[] = { "mapped-ram", "x-ignore-shared",
                                        NULL };
    static const char *const other[] = { "mapped-ram", NULL };
    GByteArray *b;

    b = stream(on, false);
    g_assert_cmpint(parse(b, b->len), ==, 1);
    g_byte_array_free(b, TRUE);
    b = stream(both, true);
    g_assert_cmpint(parse(b, b->len), ==, 1);
    g_byte_array_free(b, TRUE);
    b = stream(other, false);
    g_assert_cmpint(parse(b, b->len), ==, 0);
    g_byte_array_free(b, TRUE);
    b = stream(NULL, true);
    g_assert_cmpint(parse(b, b->len), ==, 0);
    g_byte_array_free(b, TRUE);
}

/* Cut anywhere before the next section: unknown, not "off". */
static void test_prefixes(void)
{
    static const char *const on[] = { "x-ignore-shared", NULL };
    GByteArray *b = stream(on, true);

    for (size_t len = 0; len < b->len - 5; len++) {
        g_assert_cmpint(parse(b, len), ==, -1);
    }
    g_byte_array_free(b, TRUE);
}

static void test_not_known(void)
{
    GByteArray *b = stream(NULL, false);

    /* not a stream */
    b->data[0] ^= 1;
    g_assert_cmpint(parse(b, b->len), ==, -1);
    g_byte_array_free(b, TRUE);
    /* no configuration section */
    b = g_byte_array_new();
    put32(b, 0x5145564d);
    put32(b, 3);
    put8(b, 1);
    put32(b, 2);
    g_assert_cmpint(parse(b, b->len), ==, -1);
    g_byte_array_free(b, TRUE);
    /* a subsection this parser does not know */
    b = stream(NULL, false);
    g_byte_array_set_size(b, b->len - 5);
    subsection(b, "configuration/something-new");
    put32(b, 0);
    put8(b, 1);
    g_assert_cmpint(parse(b, b->len), ==, -1);
    g_byte_array_free(b, TRUE);
    /* a machine name longer than the buffer */
    b = stream(NULL, false);
    b->data[9] = 0x7f;
    g_assert_cmpint(parse(b, b->len), ==, -1);
    g_byte_array_free(b, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/stream-config/ignore-shared", test_ignore_shared);
    g_test_add_func("/stream-config/prefixes", test_prefixes);
    g_test_add_func("/stream-config/not-known", test_not_known);
    return g_test_run();
}
