/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Encoding a VM description (vmdesc.h): entries appended to a growing
 * buffer; running out of memory is noted once and ends as NULL.
 */
#include "vmdesc.h"
#include "vmdesc-tags.h"
#include "le.h"

#include <stdlib.h>
#include <string.h>

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

/* entry_samples -- the sampled pages: page size, count, (index, hash)... */
static void entry_samples(Buf *b, uint32_t tag, uint32_t nr,
                          const CprVmdescSample *samples)
{
    size_t at = begin_entry(b, tag);
    uint8_t *p = grow(b, 8 + 16 * (size_t)nr);

    if (p) {
        cpr_put32(p, CPR_VMDESC_PAGE);
        cpr_put32(p + 4, nr);
        for (uint32_t i = 0; i < nr; i++) {
            cpr_put64(p + 8 + 16 * i, samples[i].index);
            cpr_put64(p + 16 + 16 * i, samples[i].xxh3);
        }
    }
    end_entry(b, at);
}

static void encode_block(Buf *b, const CprVmdescBlock *k)
{
    size_t at = begin_entry(b, T_RAM_BLOCK);
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
    entry_samples(b, B_SAMPLES, k->nr_samples, k->samples);
    end_entry(b, at);
}

static void encode_disk(Buf *b, const CprVmdescDisk *k)
{
    size_t at = begin_entry(b, T_DISK);
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
        entry_samples(b, D_SAMPLES, k->nr_samples, k->samples);
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
