/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading a VM description's entry lists (vmdesc-tags.h): the entries
 * one by one and the values they hold, every length checked against what
 * is left before it is used.  What the entries mean is vmdesc-decode.c.
 */
#ifndef CPR_VMDESC_ENTRY_H
#define CPR_VMDESC_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmdesc.h"

/* A decode under way: the first failure's reason (static text), and
 * whether it was memory. */
typedef struct CprDec {
    const char *why;
    bool oom;
} CprDec;

/* Note @why unless a failure is noted already; returns false. */
bool cpr_dec_fail(CprDec *x, const char *why);

/* One known entry of a list, into @obj. */
typedef bool (*CprEntryFn)(CprDec *x, void *obj, uint32_t tag,
                           const uint8_t *v, uint32_t len);

/*
 * The entry list buf[0, len): @fn for each entry whose tag is 1 to @max;
 * other tags are informational, from a later writer, and skipped.  A
 * known tag may occur once unless @repeat has its bit; the tags met are
 * returned in *@seen.
 */
bool cpr_dec_entries(CprDec *x, const uint8_t *buf, size_t len,
                     uint32_t max, uint32_t repeat, CprEntryFn fn,
                     void *obj, uint32_t *seen);

/* A string of at most @max bytes without NUL, as a new C string. */
bool cpr_dec_str(CprDec *x, const uint8_t *v, uint32_t len, uint32_t max,
                 bool nonempty, char **out);

/* A media class (CprMedia) and its detail. */
bool cpr_dec_media(CprDec *x, const uint8_t *v, uint32_t len,
                   uint32_t *media, char **detail);

/* A value of exactly @want bytes. */
bool cpr_dec_fixed(CprDec *x, uint32_t len, uint32_t want);

/* A list of sampled pages: page size, count, (index, hash) each. */
bool cpr_dec_samples(CprDec *x, uint32_t *nr, CprVmdescSample *out,
                     const uint8_t *v, uint32_t len);

/* Sampled pages of a @size-byte block or file: as many as the size
 * asks, distinct, inside it. */
bool cpr_dec_check_samples(CprDec *x, uint64_t size, uint32_t nr,
                           const CprVmdescSample *samples);

#endif
