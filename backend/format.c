/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "format.h"
#include "le.h"
#include "vmdesc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* Field offsets: the byte-exact layout documented in FORMAT.md. */
enum {
    SB_MAGIC = 0, SB_VERSION = 8, SB_SIZE = 12, SB_UUID = 16,
    SB_CTIME = 32, SB_RESERVED = 40, SB_CSUM = 56,
};
enum {
    REC_MAGIC = 0, REC_VERSION = 8, REC_SIZE = 12, REC_GEN = 16,
    REC_FLAGS = 24, REC_OFF = 32, REC_LEN = 40, REC_XXH3 = 48,
    REC_CTIME = 56, REC_QEMU = 64, REC_KERNEL = 96, REC_PAD = 161,
    REC_FP = 168, REC_V1_CSUM = 176,
    /* Version 2 appends: */
    REC_STREAM_LEN = 176, REC_V2_CSUM = 184,
};
_Static_assert(REC_QEMU + CPR_QEMU_VERSION_LEN == REC_KERNEL, "layout");
_Static_assert(REC_KERNEL + CPR_KERNEL_RELEASE_LEN == REC_PAD, "layout");
_Static_assert(REC_V1_CSUM + 8 == CPR_REC_V1_SIZE, "layout");
_Static_assert(REC_V2_CSUM + 8 == CPR_REC_V2_SIZE, "layout");
_Static_assert(CPR_REC_V3_SIZE == CPR_REC_V2_SIZE, "layout");
_Static_assert(SB_CSUM + 8 == CPR_SB_SIZE, "layout");

/* A word at a time, eight words per test: the commit scans gaps and
 * the persistence layer whole pages with it. */
bool cpr_all_zero(const uint8_t *b, size_t len)
{
    const uint64_t *w;
    size_t n;

    for (; len && ((uintptr_t)b % 8); b++, len--) {
        if (*b) {
            return false;
        }
    }
    w = (const uint64_t *)(const void *)b;
    n = len / 8;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = 0;

        for (size_t j = i; j < i + 8 && j < n; j++) {
            x |= w[j];
        }
        if (x) {
            return false;
        }
    }
    for (size_t i = n * 8; i < len; i++) {
        if (b[i]) {
            return false;
        }
    }
    return true;
}

/* Copy a string into a fixed field, NUL-padded, always NUL-terminated. */
static void put_str(uint8_t *p, size_t field, const char *s)
{
    size_t n = strnlen(s, field - 1);

    memset(p, 0, field);
    memcpy(p, s, n);
}

bool cpr_get_str(const uint8_t *p, size_t field, char *out)
{
    size_t n = strnlen((const char *)p, field);

    if (n == field || !cpr_all_zero(p + n, field - n)) {
        return false;
    }
    memcpy(out, p, field);
    return true;
}

void cpr_sb_encode(const CprSuperblock *sb, uint8_t *buf)
{
    memset(buf, 0, CPR_SB_SIZE);
    memcpy(buf + SB_MAGIC, CPR_SB_MAGIC, CPR_MAGIC_LEN);
    cpr_put32(buf + SB_VERSION, sb->version);
    cpr_put32(buf + SB_SIZE, CPR_SB_SIZE);
    memcpy(buf + SB_UUID, sb->uuid, sizeof(sb->uuid));
    cpr_put64(buf + SB_CTIME, sb->ctime_ns);
    cpr_put64(buf + SB_CSUM, XXH3_64bits(buf, SB_CSUM));
}

CprDecode cpr_decode_envelope(const uint8_t *buf, size_t len,
                              const char *magic, uint32_t min_size,
                              uint32_t max_size, uint32_t max_version,
                              uint32_t *version, uint32_t *size_out)
{
    uint32_t size;

    if (len < min_size) {
        return CPR_DECODE_BAD;
    }
    if (cpr_all_zero(buf, len < max_size ? len : max_size)) {
        return CPR_DECODE_EMPTY;
    }
    if (memcmp(buf, magic, CPR_MAGIC_LEN) != 0) {
        return CPR_DECODE_BAD;
    }
    *version = cpr_get32(buf + 8);
    size = cpr_get32(buf + 12);
    if (*version == 0 || size < 24 || size > len || size > CPR_BLOCK_SIZE ||
        size % 8 != 0) {
        return CPR_DECODE_BAD;
    }
    if (XXH3_64bits(buf, size - 8) != cpr_get64(buf + size - 8)) {
        return CPR_DECODE_BAD;
    }
    *size_out = size;
    return *version > max_version ? CPR_DECODE_TOO_NEW : CPR_DECODE_OK;
}

CprDecode cpr_sb_decode(const uint8_t *buf, size_t len, CprSuperblock *sb)
{
    uint32_t version = 0, size = 0;
    CprDecode d = cpr_decode_envelope(buf, len, CPR_SB_MAGIC, CPR_SB_SIZE,
                                      CPR_SB_SIZE, CPR_SB_VERSION, &version,
                                      &size);

    memset(sb, 0, sizeof(*sb));
    sb->version = version;
    if (d != CPR_DECODE_OK) {
        return d;
    }
    if (size != CPR_SB_SIZE) {
        return CPR_DECODE_BAD;
    }
    if (!cpr_all_zero(buf + SB_RESERVED, SB_CSUM - SB_RESERVED)) {
        return CPR_DECODE_BAD;
    }
    memcpy(sb->uuid, buf + SB_UUID, sizeof(sb->uuid));
    sb->ctime_ns = cpr_get64(buf + SB_CTIME);
    return CPR_DECODE_OK;
}

/* The size of a record of @version (versions above ours: our size);
 * version 3 only changes how the payload checksum is taken. */
static uint32_t record_size(uint32_t version)
{
    return version == 1 ? CPR_REC_V1_SIZE : CPR_REC_V3_SIZE;
}

size_t cpr_record_encode(const CprRecord *rec, uint8_t *buf)
{
    uint32_t size = record_size(rec->version);

    memset(buf, 0, CPR_REC_SIZE);
    memcpy(buf + REC_MAGIC, CPR_REC_MAGIC, CPR_MAGIC_LEN);
    cpr_put32(buf + REC_VERSION, rec->version);
    cpr_put32(buf + REC_SIZE, size);
    cpr_put64(buf + REC_GEN, rec->generation);
    cpr_put64(buf + REC_FLAGS, rec->flags);
    cpr_put64(buf + REC_OFF, rec->payload_off);
    cpr_put64(buf + REC_LEN, rec->payload_len);
    cpr_put64(buf + REC_XXH3, rec->payload_xxh3);
    cpr_put64(buf + REC_CTIME, rec->ctime_ns);
    put_str(buf + REC_QEMU, CPR_QEMU_VERSION_LEN, rec->qemu_version);
    put_str(buf + REC_KERNEL, CPR_KERNEL_RELEASE_LEN, rec->kernel_release);
    cpr_put64(buf + REC_FP, rec->cmdline_fp);
    if (size > CPR_REC_V1_SIZE) {
        cpr_put64(buf + REC_STREAM_LEN, rec->stream_len);
    }
    cpr_put64(buf + size - 8, XXH3_64bits(buf, size - 8));
    return size;
}

CprDecode cpr_record_decode(const uint8_t *buf, size_t len, CprRecord *rec)
{
    uint32_t version = 0, size = 0;
    CprDecode d = cpr_decode_envelope(buf, len, CPR_REC_MAGIC,
                                      CPR_REC_V1_SIZE, CPR_REC_SIZE,
                                      CPR_REC_VERSION, &version, &size);

    memset(rec, 0, sizeof(*rec));
    rec->version = version;
    if (d == CPR_DECODE_OK || d == CPR_DECODE_TOO_NEW) {
        /* Envelope is intact and generation sits in the common prefix. */
        rec->generation = cpr_get64(buf + REC_GEN);
        if (rec->generation == 0 || rec->generation > CPR_MAX_GENERATION) {
            memset(rec, 0, sizeof(*rec));
            return CPR_DECODE_BAD;
        }
    }
    if (d != CPR_DECODE_OK) {
        return d;
    }
    if (size != record_size(version)) {
        memset(rec, 0, sizeof(*rec));
        return CPR_DECODE_BAD;
    }
    rec->flags = cpr_get64(buf + REC_FLAGS);
    rec->payload_off = cpr_get64(buf + REC_OFF);
    rec->payload_len = cpr_get64(buf + REC_LEN);
    rec->payload_xxh3 = cpr_get64(buf + REC_XXH3);
    rec->ctime_ns = cpr_get64(buf + REC_CTIME);
    rec->cmdline_fp = cpr_get64(buf + REC_FP);
    rec->stream_len = version == 1 ? rec->payload_len :
                      cpr_get64(buf + REC_STREAM_LEN);
    if ((rec->flags & ~CPR_REC_FLAGS_KNOWN) ||
        rec->stream_len > rec->payload_len ||
        rec->payload_len - rec->stream_len > CPR_VMDESC_MAX ||
        !cpr_get_str(buf + REC_QEMU, CPR_QEMU_VERSION_LEN, rec->qemu_version) ||
        !cpr_get_str(buf + REC_KERNEL, CPR_KERNEL_RELEASE_LEN,
                 rec->kernel_release) ||
        !cpr_all_zero(buf + REC_PAD, REC_FP - REC_PAD)) {
        memset(rec, 0, sizeof(*rec));
        return CPR_DECODE_BAD;
    }
    return CPR_DECODE_OK;
}

uint64_t cpr_csum_list(const uint64_t *h, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return XXH3_64bits(h, n * sizeof(*h));
#else
    XXH3_state_t *st = XXH3_createState();
    uint8_t buf[256 * 8];
    uint64_t r;

    if (!st) {
        abort();
    }
    XXH3_64bits_reset(st);
    for (size_t i = 0; i < n; i += 256) {
        size_t m = n - i < 256 ? n - i : 256;

        for (size_t j = 0; j < m; j++) {
            cpr_put64(buf + 8 * j, h[i + j]);
        }
        XXH3_64bits_update(st, buf, 8 * m);
    }
    r = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return r;
#endif
}

static uint64_t zero_page_hash;

static void init_zero_page_hash(void)
{
    static const uint8_t zeros[CPR_CSUM_PAGE];

    zero_page_hash = XXH3_64bits(zeros, sizeof(zeros));
}

uint64_t cpr_csum_zero_page(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, init_zero_page_hash);
    return zero_page_hash;
}

int cpr_csum_tree(const uint64_t *page_xxh3, uint64_t npages,
                  uint64_t *csum)
{
    uint64_t nblocks = (npages + CPR_CSUM_PAGES_PER_BLOCK - 1) /
                       CPR_CSUM_PAGES_PER_BLOCK;
    uint64_t few[16] = { 0 }, *blocks = few;

    if (nblocks > sizeof(few) / sizeof(few[0]) &&
        !(blocks = malloc(nblocks * sizeof(*blocks)))) {
        return -1;
    }
    for (uint64_t k = 0; k < nblocks; k++) {
        uint64_t first = k * CPR_CSUM_PAGES_PER_BLOCK;
        uint64_t n = npages - first < CPR_CSUM_PAGES_PER_BLOCK ?
                     npages - first : CPR_CSUM_PAGES_PER_BLOCK;

        blocks[k] = cpr_csum_block(page_xxh3 + first, n);
    }
    *csum = cpr_csum_top(blocks, nblocks);
    if (blocks != few) {
        free(blocks);
    }
    return 0;
}

uint64_t cpr_csum_payload(const void *buf, uint64_t len)
{
    const uint8_t *b = buf;
    uint64_t npages = (len + CPR_CSUM_PAGE - 1) / CPR_CSUM_PAGE;
    uint64_t *pages = malloc((npages ? npages : 1) * sizeof(*pages));
    uint64_t r;

    for (uint64_t pg = 0; pages && pg < npages; pg++) {
        uint64_t o = pg * CPR_CSUM_PAGE;

        pages[pg] = XXH3_64bits(b + o, len - o < CPR_CSUM_PAGE ?
                                len - o : CPR_CSUM_PAGE);
    }
    if (!pages || cpr_csum_tree(pages, npages, &r) < 0) {
        abort();
    }
    free(pages);
    return r;
}

uint64_t cpr_record_checksum(uint32_t version, const void *buf, uint64_t len)
{
    return version < 3 ? XXH3_64bits(buf, len) : cpr_csum_payload(buf, len);
}

bool cpr_record_fits(const CprRecord *rec, uint64_t file_size)
{
    return rec->payload_off >= CPR_PAYLOAD_AREA &&
           rec->payload_off <= file_size &&
           rec->payload_len <= file_size - rec->payload_off;
}

void cpr_slots_decode(const uint8_t *header, CprSlots *s)
{
    s->newest = -1;
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        CprDecode d = cpr_record_decode(header + CPR_SLOT_OFFSET(i),
                                        CPR_BLOCK_SIZE, &s->rec[i]);

        if ((d == CPR_DECODE_OK || d == CPR_DECODE_TOO_NEW) &&
            cpr_slot_for(s->rec[i].generation) != i) {
            memset(&s->rec[i], 0, sizeof(s->rec[i]));
            d = CPR_DECODE_BAD;
        }
        s->state[i] = d;
        if ((d == CPR_DECODE_OK || d == CPR_DECODE_TOO_NEW) &&
            (s->newest < 0 ||
             s->rec[i].generation > s->rec[s->newest].generation)) {
            s->newest = (int)i;
        }
    }
}
