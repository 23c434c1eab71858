/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exec: helper's completeness rule (stream-end.h): a stream commits
 * only if it starts with QEMU's header and ends with QEMU_VM_EOF and the
 * VM description, however the pipe cut it into reads; every proper
 * prefix of a stream (what a failed or cancelled migration leaves) is
 * refused.
 */
#include "exec-stream.h"
#include "stream-end.h"

#include <string.h>

/* Feed @len bytes of @buf in chunks drawn from @r (NULL: all at once). */
static int check(const guint8 *buf, gsize len, GRand *r, char **why)
{
    CprStreamEnd s;
    int ret;

    cpr_stream_end_init(&s);
    for (gsize off = 0; off < len;) {
        gsize n = r ? (gsize)g_rand_int_range(r, 1, 5000) : len - off;

        n = MIN(n, len - off);

        cpr_stream_end_feed(&s, buf + off, n);
        off += n;
    }
    g_assert_cmpuint(s.len, ==, len);
    ret = cpr_stream_end_check(&s, why);
    cpr_stream_end_free(&s);
    return ret;
}

static void assert_complete(const guint8 *buf, gsize len, GRand *r)
{
    char *why = NULL;

    if (check(buf, len, r, &why) != 0) {
        g_error("complete stream of %zu bytes refused: %s", len, why);
    }
}

static void assert_incomplete(const guint8 *buf, gsize len, GRand *r,
                              const char *reason)
{
    char *why = NULL;

    if (check(buf, len, r, &why) == 0) {
        g_error("stream of %zu bytes accepted", len);
    }
    if (reason && !strstr(why, reason)) {
        g_error("\"%s\" lacks \"%s\"", why, reason);
    }
    free(why);
}

static void test_complete_any_chunks(void)
{
    GRand *r = g_rand_new_with_seed(1);

    for (guint seed = 0; seed < 20; seed++) {
        g_autoptr(GByteArray) s = exec_stream_new(seed, 1 + seed * 5000,
                                                  60 + seed * 3000);
        CprStreamEnd e;

        assert_complete(s->data, s->len, NULL);
        assert_complete(s->data, s->len, r);
        /* one byte at a time */
        cpr_stream_end_init(&e);
        for (guint i = 0; i < s->len; i++) {
            cpr_stream_end_feed(&e, s->data + i, 1);
        }
        g_assert_cmpint(cpr_stream_end_check(&e, NULL), ==, 0);
        g_assert_cmpuint(cpr_stream_end_vmdesc_len(&e), >, 0);
        cpr_stream_end_free(&e);
    }
    g_rand_free(r);
}

/* Two reads, split at every offset: the trailer may straddle them. */
static void test_complete_every_split(void)
{
    g_autoptr(GByteArray) s = exec_stream_new(7, 3000, 300);

    for (guint k = 0; k <= s->len; k++) {
        CprStreamEnd e;

        cpr_stream_end_init(&e);
        cpr_stream_end_feed(&e, s->data, k);
        cpr_stream_end_feed(&e, s->data + k, s->len - k);
        g_assert_cmpint(cpr_stream_end_check(&e, NULL), ==, 0);
        cpr_stream_end_free(&e);
    }
}

/* What QEMU leaves when a migration fails or is cancelled: a prefix. */
static void test_every_prefix_refused(void)
{
    GRand *r = g_rand_new_with_seed(2);

    for (guint seed = 0; seed < 3; seed++) {
        g_autoptr(GByteArray) s = exec_stream_new(100 + seed, 2500, 400);

        for (gsize len = 0; len < s->len; len++) {
            assert_incomplete(s->data, len, seed ? r : NULL,
                              len == 0 ? "empty" :
                              len < 8 ? "does not start" : NULL);
        }
    }
    g_rand_free(r);
}

static void test_header(void)
{
    g_autoptr(GByteArray) s = exec_stream_new(3, 1000, 100);

    s->data[0] = 'q';                           /* magic */
    assert_incomplete(s->data, s->len, NULL, "does not start with QEMU's");
    s->data[0] = 'Q';
    s->data[7] = 2;                             /* version 2 (compat) */
    assert_incomplete(s->data, s->len, NULL, "version 3");
    s->data[7] = 3;
    assert_complete(s->data, s->len, NULL);
}

static GByteArray *with_trailer(const char *json, gssize claim)
{
    GByteArray *s = exec_stream_new(4, 500, 0);
    gsize len = strlen(json);

    /* replace the trailer exec_stream_new made */
    g_autoptr(GString) j = exec_stream_vmdesc(0);

    g_byte_array_set_size(s, s->len - j->len - 6);
    exec_stream_trailer(s, json, len);
    if (claim >= 0) {
        guint8 *p = s->data + s->len - len - 4;

        p[0] = claim >> 24;
        p[1] = claim >> 16;
        p[2] = claim >> 8;
        p[3] = claim;
    }
    return s;
}

static void test_vmdesc(void)
{
    static const char ok[] = "{\"page_size\": 4096, \"devices\": []}";
    static const char *const bad[] = {
        "", "{}", "[]", "{\"page_size\": 4096}", "{\"devices\": []}",
        "{\"page_size\": \"4096\", \"devices\": []}",
        "{\"page_size\": 4096, \"devices\": {}}",
        "{\"page_size\": 4096, \"devices\": [}",
        "{\"page_size\": 4096,\t\"devices\": []}",   /* a control byte */
        "{\"page_size\": 4096, \"devices\": [\"\xc3\xa9\"]}",  /* not ASCII */
        "x{\"page_size\": 4096, \"devices\": []}",
    };
    GByteArray *s;

    s = with_trailer(ok, -1);
    assert_complete(s->data, s->len, NULL);
    /* nothing may follow the description */
    g_byte_array_append(s, (const guint8 *)"}", 1);
    assert_incomplete(s->data, s->len, NULL, "incomplete");
    g_byte_array_unref(s);

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        s = with_trailer(bad[i], -1);
        assert_incomplete(s->data, s->len, NULL, "incomplete");
        g_byte_array_unref(s);
    }
    /* the length must be exact */
    for (gssize d = -2; d <= 2; d++) {
        if (d) {
            s = with_trailer(ok, (gssize)strlen(ok) + d);
            assert_incomplete(s->data, s->len, NULL, "incomplete");
            g_byte_array_unref(s);
        }
    }
    /* QEMU_VM_EOF must precede QEMU_VM_VMDESCRIPTION */
    s = with_trailer(ok, -1);
    s->data[s->len - strlen(ok) - 6] = 0x01;
    assert_incomplete(s->data, s->len, NULL, "incomplete");
    g_byte_array_unref(s);
    /* a machine with suppress-vmdesc=on ends at QEMU_VM_EOF: refused */
    s = exec_stream_new(5, 500, 0);
    g_byte_array_set_size(s, 500);
    g_byte_array_append(s, (const guint8 *)"", 1);
    assert_incomplete(s->data, s->len, NULL, "incomplete");
    g_byte_array_unref(s);
}

/* Length bytes that are printable themselves (0x20..0x7e). */
static void test_printable_length(void)
{
    g_autoptr(GString) j = exec_stream_vmdesc(8000);
    g_autoptr(GByteArray) s = exec_stream_new(6, 300, 0);
    g_autoptr(GString) j0 = exec_stream_vmdesc(0);

    g_byte_array_set_size(s, s->len - j0->len - 6);
    g_string_truncate(j, j->len - 2);
    while (j->len < 0x2020 - 2) {
        g_string_append(j, " ");
    }
    g_string_append(j, "]}");
    g_assert_cmpuint(j->len, ==, 0x2020);
    exec_stream_trailer(s, j->str, j->len);
    assert_complete(s->data, s->len, NULL);
    for (guint k = s->len - j->len - 8; k < s->len - j->len + 2; k++) {
        CprStreamEnd e;

        cpr_stream_end_init(&e);
        cpr_stream_end_feed(&e, s->data, k);
        cpr_stream_end_feed(&e, s->data + k, s->len - k);
        g_assert_cmpint(cpr_stream_end_check(&e, NULL), ==, 0);
        cpr_stream_end_free(&e);
    }
}

/* A long text run is dropped (bounded memory), then a real end counts. */
static void test_long_text(void)
{
    g_autoptr(GByteArray) s = exec_stream_new(8, 100, 100);
    g_autofree guint8 *text = g_malloc(1 << 20);
    g_autoptr(GString) big = exec_stream_vmdesc(3u << 20);
    CprStreamEnd e;
    char *why = NULL;

    memset(text, 'a', 1 << 20);
    cpr_stream_end_init(&e);
    cpr_stream_end_feed(&e, s->data, 50);
    for (guint i = 0; i <= CPR_STREAM_MAX_VMDESC >> 20; i++) {
        cpr_stream_end_feed(&e, text, 1 << 20);
    }
    g_assert_true(e.overflow);
    g_assert_cmpuint(e.tail_cap, <=, CPR_STREAM_MAX_VMDESC + 6);
    g_assert_cmpint(cpr_stream_end_check(&e, &why), ==, -1);
    g_assert_nonnull(strstr(why, "too long to check"));
    free(why);
    /* a binary byte, then a 3 MiB description: complete again */
    cpr_stream_end_feed(&e, (const guint8 *)"\x01", 1);
    g_assert_false(e.overflow);
    {
        g_autoptr(GByteArray) t = g_byte_array_new();

        exec_stream_trailer(t, big->str, big->len);
        cpr_stream_end_feed(&e, t->data, t->len);
    }
    g_assert_cmpint(cpr_stream_end_check(&e, NULL), ==, 0);
    g_assert_cmpuint(cpr_stream_end_vmdesc_len(&e), ==, big->len);
    cpr_stream_end_free(&e);
}

/*
 * The rule's limit (docs/exec-helper.md): bytes in the body that look
 * exactly like QEMU's end (a guest can put them in its RAM) make a
 * prefix cut right after them look complete.  QEMU cuts a failed stream
 * at a buffer boundary it chooses, not the guest, so this takes a cut
 * at exactly that byte.  Shown here so that the limit is on record.
 */
static void test_limit_planted_trailer(void)
{
    g_autoptr(GByteArray) s = exec_stream_new(9, 1000, 100);
    g_autoptr(GString) j = exec_stream_vmdesc(100);
    gsize cut;

    g_byte_array_set_size(s, 600);
    exec_stream_trailer(s, j->str, j->len);
    cut = s->len;
    g_byte_array_append(s, (const guint8 *)"\x02\x03more body", 11);
    exec_stream_trailer(s, j->str, j->len);
    assert_complete(s->data, s->len, NULL);
    assert_complete(s->data, cut, NULL);          /* the limit */
    assert_incomplete(s->data, cut + 1, NULL, "incomplete");
    assert_incomplete(s->data, cut - 1, NULL, "incomplete");
}

/* A VM description whose devices array nests @depth - 1 arrays (the
 * object around it is level 1), with @inner inside the innermost. */
static GString *nested_vmdesc(guint depth, const char *inner)
{
    GString *j = g_string_new("{\"page_size\": 4096, \"devices\": ");

    for (guint i = 1; i < depth; i++) {
        g_string_append_c(j, '[');
    }
    g_string_append(j, inner);
    for (guint i = 1; i < depth; i++) {
        g_string_append_c(j, ']');
    }
    g_string_append_c(j, '}');
    return j;
}

/*
 * The description's nesting is bounded before json-glib (which recurses
 * per level) sees it: 100,000 levels are refused with the reason, not a
 * stack overflow; the largest accepted depth is, in a time printed.
 */
static void test_vmdesc_depth(void)
{
    const guint max = CPR_STREAM_MAX_VMDESC_DEPTH;
    g_autofree char *brackets = g_strnfill(200000, '[');
    g_autofree char *in_string = g_strdup_printf("\"%s\"", brackets);
    guint depths[] = { 100000, max + 1, max };

    for (guint i = 0; i < G_N_ELEMENTS(depths); i++) {
        g_autoptr(GString) j = nested_vmdesc(depths[i], "");
        g_autoptr(GByteArray) s = with_trailer(j->str, -1);
        gint64 t0 = g_get_monotonic_time();

        if (depths[i] > max) {
            assert_incomplete(s->data, s->len, NULL, "nest deeper than");
        } else {
            assert_complete(s->data, s->len, NULL);
        }
        g_test_message("depth %u: %s in %.2f ms", depths[i],
                       depths[i] > max ? "refused" : "accepted",
                       (g_get_monotonic_time() - t0) / 1e3);
    }
    /* brackets inside a string are no nesting */
    {
        g_autoptr(GString) j = nested_vmdesc(2, in_string);
        g_autoptr(GByteArray) s = with_trailer(j->str, -1);

        assert_complete(s->data, s->len, NULL);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/stream-end/complete-any-chunks", test_complete_any_chunks);
    g_test_add_func("/stream-end/complete-every-split", test_complete_every_split);
    g_test_add_func("/stream-end/every-prefix-refused", test_every_prefix_refused);
    g_test_add_func("/stream-end/header", test_header);
    g_test_add_func("/stream-end/vmdesc", test_vmdesc);
    g_test_add_func("/stream-end/printable-length", test_printable_length);
    g_test_add_func("/stream-end/long-text", test_long_text);
    g_test_add_func("/stream-end/limit-planted-trailer",
                    test_limit_planted_trailer);
    g_test_add_func("/stream-end/vmdesc-depth", test_vmdesc_depth);
    return g_test_run();
}
