/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vmdesc.h"
#include "le.h"

#include <stdlib.h>
#include <string.h>

/* Entry tags (FORMAT.md, "VM description"). */
enum {
    T_SEED = 1, T_QEMU_VERSION = 2, T_KERNEL_RELEASE = 3, T_MACHINE = 4,
    T_CPU = 5, T_ARGV = 6, T_IMAGE_MEDIA = 7, T_RAM_BLOCK = 8,
    T_DISK = 9,     /* version 2 */
    T_TOP_MAX = 9,
};
enum {
    D_NODE = 1, D_FILENAME = 2, D_DRIVER = 3, D_SIZE = 4, D_FLAGS = 5,
    D_FILE = 6, D_SAMPLES = 7,
    D_MAX = 7,
};
#define DISK_FILE_LEN 64u
enum {
    B_NAME = 1, B_SIZE = 2, B_FLAGS = 3, B_FD_OFFSET = 4, B_MEDIA = 5,
    B_FILE = 6, B_PATH = 7, B_SAMPLES = 8, B_BIRTH = 9,
    B_MAX = 9,
};
#define ENTRY_HEADER 8u
#define FILE_LEN 40u
#define BIRTH_LEN 16u
#define SHORT_STR 256u

const char *cpr_media_name(uint32_t media)
{
    switch (media) {
    case CPR_MEDIA_PMEM: return "pmem";
    case CPR_MEDIA_PAGE_CACHE: return "page-cache";
    case CPR_MEDIA_VOLATILE: return "volatile";
    default: return "unknown";
    }
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct Buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} Buf;

static uint8_t *grow(Buf *b, size_t n)
{
    if (b->oom) {
        return NULL;
    }
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        uint8_t *np;

        while (cap - b->len < n) {
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return NULL;
        }
        b->p = np;
        b->cap = cap;
    }
    b->len += n;
    return b->p + b->len - n;
}

/* Start an entry; returns its offset, for end_entry() to fill the length. */
static size_t begin_entry(Buf *b, uint32_t tag)
{
    uint8_t *p = grow(b, ENTRY_HEADER);

    if (p) {
        cpr_put32(p, tag);
        cpr_put32(p + 4, 0);
    }
    return b->len - ENTRY_HEADER;
}

static void end_entry(Buf *b, size_t at)
{
    if (!b->oom) {
        cpr_put32(b->p + at + 4, (uint32_t)(b->len - at - ENTRY_HEADER));
    }
}

static void put_bytes(Buf *b, const void *v, size_t n)
{
    uint8_t *p = grow(b, n);

    if (p && n) {
        memcpy(p, v, n);
    }
}

static void entry_bytes(Buf *b, uint32_t tag, const void *v, size_t n)
{
    size_t at = begin_entry(b, tag);

    put_bytes(b, v, n);
    end_entry(b, at);
}

static void entry_str(Buf *b, uint32_t tag, const char *s)
{
    entry_bytes(b, tag, s ? s : "", s ? strlen(s) : 0);
}

static void entry_u32(Buf *b, uint32_t tag, uint32_t v)
{
    uint8_t p[4];

    cpr_put32(p, v);
    entry_bytes(b, tag, p, sizeof(p));
}

static void entry_u64(Buf *b, uint32_t tag, uint64_t v)
{
    uint8_t p[8];

    cpr_put64(p, v);
    entry_bytes(b, tag, p, sizeof(p));
}

static void entry_media(Buf *b, uint32_t tag, uint32_t media,
                        const char *detail)
{
    size_t at = begin_entry(b, tag);
    uint8_t *p = grow(b, 4);

    if (p) {
        cpr_put32(p, media);
    }
    put_bytes(b, detail ? detail : "", detail ? strlen(detail) : 0);
    end_entry(b, at);
}

static void encode_block(Buf *b, const CprVmdescBlock *k)
{
    size_t at = begin_entry(b, T_RAM_BLOCK), s;
    uint8_t *p;

    entry_str(b, B_NAME, k->name);
    entry_u64(b, B_SIZE, k->size);
    entry_u32(b, B_FLAGS, k->flags);
    entry_u64(b, B_FD_OFFSET, k->fd_offset);
    entry_media(b, B_MEDIA, k->media, k->media_detail);
    if (k->has_file) {
        p = grow(b, ENTRY_HEADER + FILE_LEN);
        if (p) {
            cpr_put32(p, B_FILE);
            cpr_put32(p + 4, FILE_LEN);
            cpr_put64(p + 8, k->file.dev);
            cpr_put64(p + 16, k->file.ino);
            cpr_put64(p + 24, k->file.size);
            cpr_put64(p + 32, (uint64_t)k->file.mtime_sec);
            cpr_put32(p + 40, k->file.mtime_nsec);
            cpr_put32(p + 44, k->file.nlink);
        }
        entry_str(b, B_PATH, k->file.path);
        if (k->file.has_birth) {
            p = grow(b, ENTRY_HEADER + BIRTH_LEN);
            if (p) {
                cpr_put32(p, B_BIRTH);
                cpr_put32(p + 4, BIRTH_LEN);
                cpr_put64(p + 8, (uint64_t)k->file.birth_sec);
                cpr_put32(p + 16, k->file.birth_nsec);
                cpr_put32(p + 20, 0);
            }
        }
    }
    s = begin_entry(b, B_SAMPLES);
    p = grow(b, 8 + 16 * (size_t)k->nr_samples);
    if (p) {
        cpr_put32(p, CPR_VMDESC_PAGE);
        cpr_put32(p + 4, k->nr_samples);
        for (uint32_t i = 0; i < k->nr_samples; i++) {
            cpr_put64(p + 8 + 16 * i, k->samples[i].index);
            cpr_put64(p + 16 + 16 * i, k->samples[i].xxh3);
        }
    }
    end_entry(b, s);
    end_entry(b, at);
}

static void encode_disk(Buf *b, const CprVmdescDisk *k)
{
    size_t at = begin_entry(b, T_DISK), s;
    uint8_t *p;

    entry_str(b, D_NODE, k->node);
    entry_str(b, D_FILENAME, k->filename);
    entry_str(b, D_DRIVER, k->driver);
    entry_u64(b, D_SIZE, k->size);
    entry_u32(b, D_FLAGS, k->flags);
    if (k->has_file) {
        p = grow(b, ENTRY_HEADER + DISK_FILE_LEN);
        if (p) {
            cpr_put32(p, D_FILE);
            cpr_put32(p + 4, DISK_FILE_LEN);
            cpr_put64(p + 8, k->dev);
            cpr_put64(p + 16, k->ino);
            cpr_put64(p + 24, k->file_size);
            cpr_put64(p + 32, (uint64_t)k->mtime_sec);
            cpr_put32(p + 40, k->mtime_nsec);
            cpr_put32(p + 44, 0);
            cpr_put64(p + 48, (uint64_t)k->ctime_sec);
            cpr_put32(p + 56, k->ctime_nsec);
            cpr_put32(p + 60, 0);
        }
        s = begin_entry(b, D_SAMPLES);
        p = grow(b, 8 + 16 * (size_t)k->nr_samples);
        if (p) {
            cpr_put32(p, CPR_VMDESC_PAGE);
            cpr_put32(p + 4, k->nr_samples);
            for (uint32_t i = 0; i < k->nr_samples; i++) {
                cpr_put64(p + 8 + 16 * i, k->samples[i].index);
                cpr_put64(p + 16 + 16 * i, k->samples[i].xxh3);
            }
        }
        end_entry(b, s);
    }
    end_entry(b, at);
}

uint8_t *cpr_vmdesc_encode(const CprVmdesc *d, size_t *len)
{
    Buf b = { 0 };
    uint8_t *p = grow(&b, CPR_VMDESC_HEADER);

    if (p) {
        memcpy(p, CPR_VMDESC_MAGIC, 8);
        cpr_put32(p + 8, CPR_VMDESC_VERSION);
        cpr_put32(p + 12, 0);
    }
    entry_u64(&b, T_SEED, d->seed);
    entry_str(&b, T_QEMU_VERSION, d->qemu_version);
    entry_str(&b, T_KERNEL_RELEASE, d->kernel_release);
    entry_str(&b, T_MACHINE, d->machine);
    entry_str(&b, T_CPU, d->cpu);
    entry_bytes(&b, T_ARGV, d->argv, d->argv ? d->argv_len : 0);
    entry_media(&b, T_IMAGE_MEDIA, d->image_media, d->image_media_detail);
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        encode_block(&b, &d->blocks[i]);
    }
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        encode_disk(&b, &d->disks[i]);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct Dec {
    const char *why;
    bool oom;
} Dec;

static bool fail(Dec *x, const char *why)
{
    if (!x->why) {
        x->why = why;
    }
    return false;
}

/*
 * The next entry of [*pos, end): tag, value and its length.  Every
 * length is checked against what is left before it is used.
 */
static bool next_entry(Dec *x, const uint8_t *buf, size_t *pos, size_t end,
                       uint32_t *tag, const uint8_t **val, uint32_t *len)
{
    if (end - *pos < ENTRY_HEADER) {
        return fail(x, "truncated entry header");
    }
    *tag = cpr_get32(buf + *pos);
    *len = cpr_get32(buf + *pos + 4);
    if (*len > end - *pos - ENTRY_HEADER) {
        return fail(x, "entry longer than the description");
    }
    *val = buf + *pos + ENTRY_HEADER;
    *pos += ENTRY_HEADER + *len;
    return true;
}

/* A string of at most @max bytes without NUL, as a new C string. */
static bool get_str(Dec *x, const uint8_t *v, uint32_t len, uint32_t max,
                    bool nonempty, char **out)
{
    if (len > max) {
        return fail(x, "string too long");
    }
    if (nonempty && len == 0) {
        return fail(x, "empty name");
    }
    if (memchr(v, 0, len)) {
        return fail(x, "NUL inside a string");
    }
    *out = malloc((size_t)len + 1);
    if (!*out) {
        x->oom = true;
        return fail(x, "out of memory");
    }
    memcpy(*out, v, len);
    (*out)[len] = 0;
    return true;
}

static bool get_media(Dec *x, const uint8_t *v, uint32_t len,
                      uint32_t *media, char **detail)
{
    if (len < 4) {
        return fail(x, "bad media entry length");
    }
    *media = cpr_get32(v);
    if (*media < CPR_MEDIA_PMEM || *media > CPR_MEDIA_VOLATILE) {
        return fail(x, "unknown media class");
    }
    return get_str(x, v + 4, len - 4, CPR_VMDESC_MAX_DETAIL, false, detail);
}

/* Marks a known tag as seen; a second one is malformed. */
static bool once(Dec *x, uint32_t *seen, uint32_t tag)
{
    if (*seen & (1u << tag)) {
        return fail(x, "duplicate entry");
    }
    *seen |= 1u << tag;
    return true;
}

static bool fixed(Dec *x, uint32_t len, uint32_t want)
{
    return len == want || fail(x, "bad entry length");
}

static bool decode_sample_list(Dec *x, uint32_t *nr, CprVmdescSample *out,
                               const uint8_t *v, uint32_t len)
{
    uint32_t count;

    if (len < 8) {
        return fail(x, "bad samples entry length");
    }
    if (cpr_get32(v) != CPR_VMDESC_PAGE) {
        return fail(x, "unsupported sample page size");
    }
    count = cpr_get32(v + 4);
    if (count > CPR_VMDESC_MAX_SAMPLES || len != 8 + 16 * count) {
        return fail(x, "bad sample count");
    }
    *nr = count;
    for (uint32_t i = 0; i < count; i++) {
        out[i].index = cpr_get64(v + 8 + 16 * i);
        out[i].xxh3 = cpr_get64(v + 16 + 16 * i);
    }
    return true;
}

/* Sampled pages: as many as the size asks, distinct, inside it. */
static bool check_samples(Dec *x, uint64_t size, uint32_t nr,
                          const CprVmdescSample *samples)
{
    uint64_t pages = cpr_vmdesc_pages(size);

    if (nr != cpr_vmdesc_nr_samples(size)) {
        return fail(x, "wrong number of sampled pages for the block size");
    }
    for (uint32_t i = 0; i < nr; i++) {
        if (samples[i].index >= pages) {
            return fail(x, "sampled page outside the block");
        }
        for (uint32_t j = 0; j < i; j++) {
            if (samples[j].index == samples[i].index) {
                return fail(x, "page sampled twice");
            }
        }
    }
    return true;
}

/* Checks that need the whole block. */
static bool check_block(Dec *x, const CprVmdescBlock *k)
{
    if (!check_samples(x, k->size, k->nr_samples, k->samples)) {
        return false;
    }
    if (k->flags & ~CPR_RAM_FLAGS_KNOWN) {
        return fail(x, "unknown RAM block flags");
    }
    if (k->has_file && (k->file.mtime_nsec >= 1000000000u ||
                        k->file.birth_nsec >= 1000000000u)) {
        return fail(x, "bad file time");
    }
    return true;
}

static bool decode_block(Dec *x, CprVmdescBlock *k, const uint8_t *buf,
                         size_t pos, size_t end)
{
    const uint32_t need = 1u << B_NAME | 1u << B_SIZE | 1u << B_FLAGS |
                          1u << B_FD_OFFSET | 1u << B_MEDIA | 1u << B_SAMPLES;
    uint32_t seen = 0, tag, len;
    const uint8_t *v;

    while (pos < end) {
        if (!next_entry(x, buf, &pos, end, &tag, &v, &len)) {
            return false;
        }
        if (tag == 0 || tag > B_MAX) {
            continue;   /* unknown: informational, from a later writer */
        }
        if (!once(x, &seen, tag)) {
            return false;
        }
        switch (tag) {
        case B_NAME:
            if (!get_str(x, v, len, CPR_VMDESC_MAX_NAME, true, &k->name)) {
                return false;
            }
            break;
        case B_SIZE:
            if (!fixed(x, len, 8)) {
                return false;
            }
            k->size = cpr_get64(v);
            break;
        case B_FLAGS:
            if (!fixed(x, len, 4)) {
                return false;
            }
            k->flags = cpr_get32(v);
            break;
        case B_FD_OFFSET:
            if (!fixed(x, len, 8)) {
                return false;
            }
            k->fd_offset = cpr_get64(v);
            break;
        case B_MEDIA:
            if (!get_media(x, v, len, &k->media, &k->media_detail)) {
                return false;
            }
            break;
        case B_FILE:
            if (!fixed(x, len, FILE_LEN)) {
                return false;
            }
            k->has_file = true;
            k->file.dev = cpr_get64(v);
            k->file.ino = cpr_get64(v + 8);
            k->file.size = cpr_get64(v + 16);
            k->file.mtime_sec = (int64_t)cpr_get64(v + 24);
            k->file.mtime_nsec = cpr_get32(v + 32);
            k->file.nlink = cpr_get32(v + 36);
            break;
        case B_PATH:
            if (!get_str(x, v, len, CPR_VMDESC_MAX_STR, false,
                         &k->file.path)) {
                return false;
            }
            break;
        case B_SAMPLES:
            if (!decode_sample_list(x, &k->nr_samples, k->samples, v, len)) {
                return false;
            }
            break;
        case B_BIRTH:
            if (!fixed(x, len, BIRTH_LEN) || cpr_get32(v + 12) != 0) {
                return fail(x, "bad birth time entry");
            }
            k->file.has_birth = true;
            k->file.birth_sec = (int64_t)cpr_get64(v);
            k->file.birth_nsec = cpr_get32(v + 8);
            break;
        }
    }
    if ((seen & need) != need) {
        return fail(x, "RAM block entry lacks a required field");
    }
    if (!(seen & (1u << B_FILE)) != !(seen & (1u << B_PATH)) ||
        ((seen & (1u << B_BIRTH)) && !(seen & (1u << B_FILE)))) {
        return fail(x, "RAM block has a file identity without a path, or "
                    "the reverse");
    }
    return check_block(x, k);
}

static bool decode_disk(Dec *x, CprVmdescDisk *k, const uint8_t *buf,
                        size_t pos, size_t end)
{
    const uint32_t need = 1u << D_NODE | 1u << D_FILENAME | 1u << D_DRIVER |
                          1u << D_SIZE | 1u << D_FLAGS;
    uint32_t seen = 0, tag, len;
    const uint8_t *v;

    while (pos < end) {
        if (!next_entry(x, buf, &pos, end, &tag, &v, &len)) {
            return false;
        }
        if (tag == 0 || tag > D_MAX) {
            continue;   /* unknown: informational, from a later writer */
        }
        if (!once(x, &seen, tag)) {
            return false;
        }
        switch (tag) {
        case D_NODE:
            if (!get_str(x, v, len, SHORT_STR, false, &k->node)) {
                return false;
            }
            break;
        case D_FILENAME:
            if (!get_str(x, v, len, CPR_VMDESC_MAX_STR, true, &k->filename)) {
                return false;
            }
            break;
        case D_DRIVER:
            if (!get_str(x, v, len, SHORT_STR, false, &k->driver)) {
                return false;
            }
            break;
        case D_SIZE:
            if (!fixed(x, len, 8)) {
                return false;
            }
            k->size = cpr_get64(v);
            break;
        case D_FLAGS:
            if (!fixed(x, len, 4)) {
                return false;
            }
            k->flags = cpr_get32(v);
            break;
        case D_FILE:
            if (!fixed(x, len, DISK_FILE_LEN) || cpr_get32(v + 36) != 0 ||
                cpr_get32(v + 52) != 0) {
                return fail(x, "bad disk file entry");
            }
            k->has_file = true;
            k->dev = cpr_get64(v);
            k->ino = cpr_get64(v + 8);
            k->file_size = cpr_get64(v + 16);
            k->mtime_sec = (int64_t)cpr_get64(v + 24);
            k->mtime_nsec = cpr_get32(v + 32);
            k->ctime_sec = (int64_t)cpr_get64(v + 40);
            k->ctime_nsec = cpr_get32(v + 48);
            break;
        case D_SAMPLES:
            if (!decode_sample_list(x, &k->nr_samples, k->samples, v, len)) {
                return false;
            }
            break;
        }
    }
    if ((seen & need) != need) {
        return fail(x, "disk entry lacks a required field");
    }
    if (!(seen & (1u << D_FILE)) != !(seen & (1u << D_SAMPLES))) {
        return fail(x, "disk has a file without samples, or the reverse");
    }
    if (k->flags & ~CPR_DISK_FLAGS_KNOWN) {
        return fail(x, "unknown disk flags");
    }
    if (k->has_file && (k->mtime_nsec >= 1000000000u ||
                        k->ctime_nsec >= 1000000000u)) {
        return fail(x, "bad file time");
    }
    return !k->has_file ||
           check_samples(x, k->file_size, k->nr_samples, k->samples);
}

/*
 * grow_array -- room for element @n of *@arr (of @size bytes each), doubling at
 * each power of two: the count is bounded by the input size.
 */
static bool grow_array(Dec *x, void **arr, uint32_t n, size_t size)
{
    void *na;

    if (n & (n - 1)) {
        return true;
    }
    na = realloc(*arr, (n ? (size_t)n * 2 : 1) * size);
    if (!na) {
        x->oom = true;
        return fail(x, "out of memory");
    }
    *arr = na;
    return true;
}

static bool add_disk(Dec *x, CprVmdesc *d, const uint8_t *buf, size_t pos,
                     size_t end)
{
    CprVmdescDisk *k;

    if (d->nr_disks >= CPR_VMDESC_MAX_DISKS) {
        return fail(x, "too many disks");
    }
    if (!grow_array(x, (void **)&d->disks, d->nr_disks, sizeof(*d->disks))) {
        return false;
    }
    k = &d->disks[d->nr_disks++];
    memset(k, 0, sizeof(*k));
    return decode_disk(x, k, buf, pos, end);
}

static bool decode_argv(Dec *x, CprVmdesc *d, const uint8_t *v, uint32_t len)
{
    uint32_t args = 0;

    if (len > CPR_VMDESC_MAX_ARGV) {
        return fail(x, "argument list longer than 4 MiB");
    }
    if (len && v[len - 1] != 0) {
        return fail(x, "argument list not NUL-terminated");
    }
    for (uint32_t i = 0; i < len; i++) {
        if (v[i] == 0 && ++args > CPR_VMDESC_MAX_ARGS) {
            return fail(x, "more than 65536 arguments");
        }
    }
    d->argv = malloc(len ? len : 1);
    if (!d->argv) {
        x->oom = true;
        return fail(x, "out of memory");
    }
    memcpy(d->argv, v, len);
    d->argv_len = len;
    return true;
}

static bool add_block(Dec *x, CprVmdesc *d, const uint8_t *buf, size_t pos,
                      size_t end)
{
    CprVmdescBlock *k;

    if (d->nr_blocks >= CPR_VMDESC_MAX_BLOCKS) {
        return fail(x, "too many RAM blocks");
    }
    if (!grow_array(x, (void **)&d->blocks, d->nr_blocks, sizeof(*d->blocks))) {
        return false;
    }
    k = &d->blocks[d->nr_blocks++];
    memset(k, 0, sizeof(*k));
    if (!decode_block(x, k, buf, pos, end)) {
        return false;
    }
    for (uint32_t i = 0; i + 1 < d->nr_blocks; i++) {
        if (strcmp(d->blocks[i].name, k->name) == 0) {
            return fail(x, "two RAM blocks of the same name");
        }
    }
    return true;
}

static bool decode_top(Dec *x, CprVmdesc *d, const uint8_t *buf, size_t len)
{
    const uint32_t need = 1u << T_SEED | 1u << T_QEMU_VERSION |
                          1u << T_KERNEL_RELEASE | 1u << T_MACHINE |
                          1u << T_CPU | 1u << T_ARGV | 1u << T_IMAGE_MEDIA;
    size_t pos = CPR_VMDESC_HEADER;
    uint32_t seen = 0, tag, n;
    const uint8_t *v;

    while (pos < len) {
        if (!next_entry(x, buf, &pos, len, &tag, &v, &n)) {
            return false;
        }
        if (tag == 0 || tag > T_TOP_MAX ||
            (tag == T_DISK && d->version < 2)) {
            continue;
        }
        if (tag != T_RAM_BLOCK && tag != T_DISK && !once(x, &seen, tag)) {
            return false;
        }
        switch (tag) {
        case T_SEED:
            if (!fixed(x, n, 8)) {
                return false;
            }
            d->seed = cpr_get64(v);
            break;
        case T_QEMU_VERSION:
            if (!get_str(x, v, n, SHORT_STR, false, &d->qemu_version)) {
                return false;
            }
            break;
        case T_KERNEL_RELEASE:
            if (!get_str(x, v, n, SHORT_STR, false, &d->kernel_release)) {
                return false;
            }
            break;
        case T_MACHINE:
            if (!get_str(x, v, n, SHORT_STR, false, &d->machine)) {
                return false;
            }
            break;
        case T_CPU:
            if (!get_str(x, v, n, SHORT_STR, false, &d->cpu)) {
                return false;
            }
            break;
        case T_ARGV:
            if (!decode_argv(x, d, v, n)) {
                return false;
            }
            break;
        case T_IMAGE_MEDIA:
            if (!get_media(x, v, n, &d->image_media,
                           &d->image_media_detail)) {
                return false;
            }
            break;
        case T_RAM_BLOCK:
            if (!add_block(x, d, buf, (size_t)(v - buf), (size_t)(v - buf) + n)) {
                return false;
            }
            break;
        case T_DISK:
            if (!add_disk(x, d, buf, (size_t)(v - buf), (size_t)(v - buf) + n)) {
                return false;
            }
            break;
        }
    }
    if ((seen & need) != need) {
        return fail(x, "a required field is missing");
    }
    return true;
}

CprVmdescResult cpr_vmdesc_decode(const uint8_t *buf, size_t len,
                                  CprVmdesc **out, const char **why)
{
    Dec x = { 0 };
    CprVmdesc *d;
    uint32_t version;

    *out = NULL;
    *why = NULL;
    if (len < CPR_VMDESC_HEADER) {
        *why = len ? "shorter than its header" : "missing";
        return CPR_VMDESC_MALFORMED;
    }
    if (len > CPR_VMDESC_MAX) {
        *why = "too long";
        return CPR_VMDESC_MALFORMED;
    }
    if (memcmp(buf, CPR_VMDESC_MAGIC, 8) != 0) {
        *why = "bad magic";
        return CPR_VMDESC_MALFORMED;
    }
    version = cpr_get32(buf + 8);
    if (version == 0 || cpr_get32(buf + 12) != 0) {
        *why = "bad header";
        return CPR_VMDESC_MALFORMED;
    }
    if (version > CPR_VMDESC_VERSION) {
        *why = "version too new";
        return CPR_VMDESC_TOO_NEW;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        *why = "out of memory";
        return CPR_VMDESC_NOMEM;
    }
    d->version = version;
    if (!decode_top(&x, d, buf, len)) {
        cpr_vmdesc_free(d);
        *why = x.why;
        return x.oom ? CPR_VMDESC_NOMEM : CPR_VMDESC_MALFORMED;
    }
    *out = d;
    return CPR_VMDESC_OK;
}

void cpr_vmdesc_free(CprVmdesc *d)
{
    if (!d) {
        return;
    }
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        free(d->blocks[i].name);
        free(d->blocks[i].media_detail);
        free(d->blocks[i].file.path);
    }
    free(d->blocks);
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        free(d->disks[i].node);
        free(d->disks[i].filename);
        free(d->disks[i].driver);
    }
    free(d->disks);
    free(d->qemu_version);
    free(d->kernel_release);
    free(d->machine);
    free(d->cpu);
    free(d->argv);
    free(d->image_media_detail);
    free(d);
}

uint32_t cpr_vmdesc_argc(const CprVmdesc *d)
{
    uint32_t n = 0;

    for (size_t i = 0; i < d->argv_len; i++) {
        n += d->argv[i] == 0;
    }
    return n;
}
