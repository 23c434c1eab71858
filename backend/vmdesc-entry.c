/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading a VM description's entry lists (vmdesc-entry.h). */
#include "vmdesc-entry.h"
#include "vmdesc-tags.h"
#include "le.h"

#include <stdlib.h>
#include <string.h>

/* cpr_dec_fail -- the first failure is the one reported. */
bool cpr_dec_fail(CprDec *x, const char *why)
{
    if (!x->why) {
        x->why = why;
    }
    return false;
}

/*
 * next_entry -- the next entry of [*pos, end): tag, value and its length.
 * Every length is checked against what is left before it is used.
 */
static bool next_entry(CprDec *x, const uint8_t *buf, size_t *pos, size_t end,
                       uint32_t *tag, const uint8_t **val, uint32_t *len)
{
    if (end - *pos < ENTRY_HEADER) {
        return cpr_dec_fail(x, "truncated entry header");
    }
    *tag = cpr_get32(buf + *pos);
    *len = cpr_get32(buf + *pos + 4);
    if (*len > end - *pos - ENTRY_HEADER) {
        return cpr_dec_fail(x, "entry longer than the description");
    }
    *val = buf + *pos + ENTRY_HEADER;
    *pos += ENTRY_HEADER + *len;
    return true;
}

/* cpr_dec_entries -- the one walk over an entry list (vmdesc-entry.h). */
bool cpr_dec_entries(CprDec *x, const uint8_t *buf, size_t len,
                     uint32_t max, uint32_t repeat, CprEntryFn fn,
                     void *obj, uint32_t *seen)
{
    size_t pos = 0;
    /* set by next_entry() when it succeeds; GCC cannot always tell */
    uint32_t tag = 0, n = 0;
    const uint8_t *v = NULL;

    *seen = 0;
    while (pos < len) {
        if (!next_entry(x, buf, &pos, len, &tag, &v, &n)) {
            return false;
        }
        if (tag == 0 || tag > max) {
            continue;
        }
        if (*seen & ~repeat & (1u << tag)) {
            return cpr_dec_fail(x, "duplicate entry");
        }
        *seen |= 1u << tag;
        if (!fn(x, obj, tag, v, n)) {
            return false;
        }
    }
    return true;
}

/* cpr_dec_str -- a string value, copied out. */
bool cpr_dec_str(CprDec *x, const uint8_t *v, uint32_t len, uint32_t max,
                 bool nonempty, char **out)
{
    if (len > max) {
        return cpr_dec_fail(x, "string too long");
    }
    if (nonempty && len == 0) {
        return cpr_dec_fail(x, "empty name");
    }
    if (memchr(v, 0, len)) {
        return cpr_dec_fail(x, "NUL inside a string");
    }
    *out = malloc((size_t)len + 1);
    if (!*out) {
        x->oom = true;
        return cpr_dec_fail(x, "out of memory");
    }
    memcpy(*out, v, len);
    (*out)[len] = 0;
    return true;
}

/* cpr_dec_media -- LE32 class, then the detail as a string. */
bool cpr_dec_media(CprDec *x, const uint8_t *v, uint32_t len,
                   uint32_t *media, char **detail)
{
    if (len < 4) {
        return cpr_dec_fail(x, "bad media entry length");
    }
    *media = cpr_get32(v);
    if (*media < CPR_MEDIA_PMEM || *media > CPR_MEDIA_VOLATILE) {
        return cpr_dec_fail(x, "unknown media class");
    }
    return cpr_dec_str(x, v + 4, len - 4, CPR_VMDESC_MAX_DETAIL, false,
                       detail);
}

/* cpr_dec_fixed -- a value of a fixed length. */
bool cpr_dec_fixed(CprDec *x, uint32_t len, uint32_t want)
{
    return len == want || cpr_dec_fail(x, "bad entry length");
}

/* cpr_dec_samples -- at most CPR_VMDESC_MAX_SAMPLES of them. */
bool cpr_dec_samples(CprDec *x, uint32_t *nr, CprVmdescSample *out,
                     const uint8_t *v, uint32_t len)
{
    uint32_t count;

    if (len < 8) {
        return cpr_dec_fail(x, "bad samples entry length");
    }
    if (cpr_get32(v) != CPR_VMDESC_PAGE) {
        return cpr_dec_fail(x, "unsupported sample page size");
    }
    count = cpr_get32(v + 4);
    if (count > CPR_VMDESC_MAX_SAMPLES || len != 8 + 16 * count) {
        return cpr_dec_fail(x, "bad sample count");
    }
    *nr = count;
    for (uint32_t i = 0; i < count; i++) {
        out[i].index = cpr_get64(v + 8 + 16 * i);
        out[i].xxh3 = cpr_get64(v + 16 + 16 * i);
    }
    return true;
}

/* cpr_dec_check_samples -- checked pairwise: at most 64 of them. */
bool cpr_dec_check_samples(CprDec *x, uint64_t size, uint32_t nr,
                           const CprVmdescSample *samples)
{
    uint64_t pages = cpr_vmdesc_pages(size);

    if (nr != cpr_vmdesc_nr_samples(size)) {
        return cpr_dec_fail(x, "wrong number of sampled pages for the "
                            "block size");
    }
    for (uint32_t i = 0; i < nr; i++) {
        if (samples[i].index >= pages) {
            return cpr_dec_fail(x, "sampled page outside the block");
        }
        for (uint32_t j = 0; j < i; j++) {
            if (samples[j].index == samples[i].index) {
                return cpr_dec_fail(x, "page sampled twice");
            }
        }
    }
    return true;
}
