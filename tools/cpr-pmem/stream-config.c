/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The layout (qemu_savevm_state_header(), vmstate_configuration):
 *   be32 "QEVM", be32 3, u8 QEMU_VM_CONFIGURATION (7),
 *   be32 n, n bytes of machine type,
 *   then subsections, each u8 QEMU_VM_SUBSECTION (5), u8 n, n bytes of
 *   name, be32 version, its fields:
 *     configuration/target-page-bits: be32;
 *     configuration/capabilities: be32 count, each u8 n + n bytes;
 *     configuration/uuid: 16 bytes.
 * Every read is bounded by @len.
 */
#include "stream-config.h"

#include <stdbool.h>
#include <string.h>

typedef struct Cursor {
    const uint8_t *p;
    size_t left;
} Cursor;

static bool take(Cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n) {
        return false;
    }
    if (out) {
        *out = c->p;
    }
    c->p += n;
    c->left -= n;
    return true;
}

static bool be32(Cursor *c, uint32_t *v)
{
    const uint8_t *b;

    if (!take(c, 4, &b)) {
        return false;
    }
    *v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         b[3];
    return true;
}

static bool u8(Cursor *c, uint8_t *v)
{
    const uint8_t *b;

    if (!take(c, 1, &b)) {
        return false;
    }
    *v = *b;
    return true;
}

static bool is(const uint8_t *s, size_t n, const char *want)
{
    return n == strlen(want) && !memcmp(s, want, n);
}

/* The capabilities subsection's fields: 1 if x-ignore-shared is in. */
static int capabilities(Cursor *c)
{
    uint32_t count;
    int found = 0;

    if (!be32(c, &count)) {
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *s;
        uint8_t n;

        if (!u8(c, &n) || !take(c, n, &s)) {
            return -1;
        }
        found |= is(s, n, "x-ignore-shared");
    }
    return found;
}

int cpr_stream_ignores_shared(const uint8_t *buf, size_t len)
{
    Cursor c = { buf, len };
    const uint8_t *s;
    uint32_t magic, version, n;
    uint8_t type;
    int found = 0;

    if (!be32(&c, &magic) || magic != 0x5145564d || !be32(&c, &version) ||
        version != 3 || !u8(&c, &type) || type != 7 || !be32(&c, &n) ||
        !take(&c, n, NULL)) {
        return -1;
    }
    while (c.left && c.p[0] == 5) {
        uint32_t sub_version, bits;
        uint8_t name_len;

        if (!take(&c, 1, NULL) || !u8(&c, &name_len) ||
            !take(&c, name_len, &s) || !be32(&c, &sub_version)) {
            return -1;
        }
        if (is(s, name_len, "configuration/target-page-bits")) {
            if (!be32(&c, &bits)) {
                return -1;
            }
        } else if (is(s, name_len, "configuration/capabilities")) {
            int r = capabilities(&c);

            if (r < 0) {
                return -1;
            }
            found |= r;
        } else if (is(s, name_len, "configuration/uuid")) {
            if (!take(&c, 16, NULL)) {
                return -1;
            }
        } else {
            return -1;          /* a subsection this parser does not know */
        }
    }
    /* The next section follows; a cut-off buffer proves nothing. */
    return c.left ? found : -1;
}
