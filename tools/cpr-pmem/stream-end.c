/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stream-end.h"

#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION and the 32-bit length. */
#define TRAILER_HEAD 6u

static bool printable(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

void cpr_stream_end_init(CprStreamEnd *s)
{
    memset(s, 0, sizeof(*s));
}

void cpr_stream_end_free(CprStreamEnd *s)
{
    free(s->tail);
    memset(s, 0, sizeof(*s));
}

/* Room for @need bytes of tail, or false (the run is then dropped). */
static bool reserve(CprStreamEnd *s, size_t need)
{
    size_t cap = s->tail_cap ? s->tail_cap : 4096;
    uint8_t *t;

    if (need <= s->tail_cap) {
        return true;
    }
    while (cap < need) {
        cap *= 2;
    }
    if (cap > CPR_STREAM_MAX_VMDESC + TRAILER_HEAD) {
        cap = CPR_STREAM_MAX_VMDESC + TRAILER_HEAD;
    }
    if (cap < need) {
        return false;
    }
    t = realloc(s->tail, cap);
    if (!t) {
        return false;
    }
    s->tail = t;
    s->tail_cap = cap;
    return true;
}

static void drop_run(CprStreamEnd *s)
{
    s->overflow = true;
    s->tail_len = s->prefix;
}

/* More printable bytes at the end of the stream. */
static void extend_run(CprStreamEnd *s, const uint8_t *p, size_t n)
{
    if (s->overflow) {
        return;
    }
    if (n > CPR_STREAM_MAX_VMDESC - (s->tail_len - s->prefix) ||
        !reserve(s, s->tail_len + n)) {
        drop_run(s);
        return;
    }
    memcpy(s->tail + s->tail_len, p, n);
    s->tail_len += n;
}

void cpr_stream_end_feed(CprStreamEnd *s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint8_t prefix[TRAILER_HEAD];
    size_t j, k, from_old;

    if (len == 0) {
        return;
    }
    for (size_t i = 0; s->len + i < sizeof(s->head) && i < len; i++) {
        s->head[s->len + i] = p[i];
    }
    /* The last byte that is not printable ends the previous run. */
    for (j = len; j > 0 && printable(p[j - 1]); j--) {
    }
    if (j == 0) {
        extend_run(s, p, len);
        s->len += len;
        return;
    }
    /*
     * The new prefix: the TRAILER_HEAD bytes of the stream up to and
     * including p[j - 1], from this buffer and, if it is short, from the
     * end of what the tail held: the stream's last bytes before this
     * buffer, unless the run was dropped.  Then those bytes are printable
     * and no trailer starts in them: the prefix is just shorter.
     */
    k = j < TRAILER_HEAD ? j : TRAILER_HEAD;
    from_old = s->overflow ? 0 : TRAILER_HEAD - k;
    if (from_old > s->tail_len) {
        from_old = s->tail_len;
    }
    if (from_old) {
        memcpy(prefix, s->tail + s->tail_len - from_old, from_old);
    }
    memcpy(prefix + from_old, p + j - k, k);
    s->overflow = false;
    s->tail_len = 0;
    s->prefix = 0;
    if (!reserve(s, from_old + k)) {
        s->overflow = true;     /* cannot even hold the prefix */
        s->len += len;
        return;
    }
    memcpy(s->tail, prefix, from_old + k);
    s->prefix = s->tail_len = from_old + k;
    extend_run(s, p + j, len - j);
    s->len += len;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static char *msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *msg(const char *fmt, ...)
{
    va_list ap;
    char *m = NULL;

    va_start(ap, fmt);
    if (vasprintf(&m, fmt, ap) < 0) {
        m = strdup("out of memory");
    }
    va_end(ap);
    return m;
}

/*
 * json_depth -- how deep arrays and objects nest in @json (strings
 * skipped), stopping at CPR_STREAM_MAX_VMDESC_DEPTH + 1: json-glib
 * parses by recursion, so deeper text must never reach it.
 */
static unsigned json_depth(const uint8_t *json, size_t len)
{
    unsigned depth = 0, max = 0;
    bool in_string = false;

    for (size_t i = 0; i < len && max <= CPR_STREAM_MAX_VMDESC_DEPTH; i++) {
        uint8_t c = json[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            depth++;
            max = MAX(max, depth);
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return max;
}

/*
 * vmdesc_ok -- QEMU's VM description: one object with a page size and
 * the devices, nested at most CPR_STREAM_MAX_VMDESC_DEPTH deep (sets
 * *@too_deep when that alone refuses it).
 */
static bool vmdesc_ok(const uint8_t *json, size_t len, bool *too_deep)
{
    JsonParser *parser;
    JsonNode *root, *ps, *dev;
    JsonObject *o;
    bool ok = false;

    if (len < 2 || json[0] != '{' || json[len - 1] != '}') {
        return false;
    }
    if (json_depth(json, len) > CPR_STREAM_MAX_VMDESC_DEPTH) {
        *too_deep = true;
        return false;
    }
    parser = json_parser_new_immutable();
    if (json_parser_load_from_data(parser, (const char *)json, (gssize)len,
                                   NULL) &&
        (root = json_parser_get_root(parser)) && JSON_NODE_HOLDS_OBJECT(root)) {
        o = json_node_get_object(root);
        ps = json_object_get_member(o, "page_size");
        dev = json_object_get_member(o, "devices");
        ok = ps && JSON_NODE_HOLDS_VALUE(ps) &&
             json_node_get_value_type(ps) == G_TYPE_INT64 &&
             dev && JSON_NODE_HOLDS_ARRAY(dev);
    }
    g_object_unref(parser);
    return ok;
}

/* Offset in the tail of the trailer's QEMU_VM_EOF byte, or -1 (and
 * *@too_deep if a description was refused for its depth). */
static long trailer_at(const CprStreamEnd *s, bool *too_deep)
{
    *too_deep = false;
    if (s->overflow) {
        return -1;
    }
    /* Both marker bytes are not printable: they lie in the prefix. */
    for (size_t i = 0; i + 1 < s->prefix; i++) {
        const uint8_t *t = s->tail + i;

        if (t[0] == CPR_QEMU_VM_EOF && t[1] == CPR_QEMU_VM_VMDESCRIPTION &&
            i + TRAILER_HEAD <= s->tail_len &&
            be32(t + 2) == s->tail_len - i - TRAILER_HEAD &&
            /* after the 8-byte header */
            s->len - (s->tail_len - i) >= sizeof(s->head) &&
            vmdesc_ok(t + TRAILER_HEAD, s->tail_len - i - TRAILER_HEAD,
                      too_deep)) {
            return (long)i;
        }
    }
    return -1;
}

int cpr_stream_end_check(const CprStreamEnd *s, char **why)
{
    static const uint8_t header[8] = { 'Q', 'E', 'V', 'M', 0, 0, 0,
                                       CPR_QEMU_VM_FILE_VERSION };
    bool too_deep;

    if (s->len == 0) {
        *why = msg("the stream is empty: QEMU sent nothing (the migration "
                   "failed or was cancelled before it started, or QEMU "
                   "exited)");
        return -1;
    }
    if (s->len < sizeof(header) || memcmp(s->head, header, sizeof(header))) {
        *why = msg("the stream (%llu bytes) does not start with QEMU's "
                   "migration stream header (\"QEVM\", version %u)",
                   (unsigned long long)s->len, CPR_QEMU_VM_FILE_VERSION);
        return -1;
    }
    if (s->overflow) {
        *why = msg("the stream (%llu bytes) ends with more than %u MiB of "
                   "text, too long to check as QEMU's VM description",
                   (unsigned long long)s->len, CPR_STREAM_MAX_VMDESC >> 20);
        return -1;
    }
    if (trailer_at(s, &too_deep) >= 0) {
        return 0;
    }
    if (too_deep) {
        *why = msg("the stream (%llu bytes) ends with a VM description "
                   "whose arrays and objects nest deeper than %u levels; "
                   "QEMU writes none such: refused unparsed",
                   (unsigned long long)s->len, CPR_STREAM_MAX_VMDESC_DEPTH);
        return -1;
    }
    *why = msg("the stream is incomplete: %llu bytes, without QEMU's "
               "end of stream (QEMU_VM_EOF, then the VM description); "
               "the migration failed or was cancelled, or QEMU exited",
               (unsigned long long)s->len);
    return -1;
}

uint32_t cpr_stream_end_vmdesc_len(const CprStreamEnd *s)
{
    bool too_deep;
    long at = trailer_at(s, &too_deep);

    return at < 0 ? 0 : be32(s->tail + at + 2);
}
