/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Decoding a VM description (vmdesc.h): the header, then one entry list
 * at the top and one inside each RAM block and disk, each walked by
 * cpr_dec_entries() (vmdesc-entry.c).  Any bytes are input (a fuzzing
 * target).
 */
#include "vmdesc.h"
#include "vmdesc-entry.h"
#include "vmdesc-tags.h"
#include "le.h"

#include <stdlib.h>
#include <string.h>

/* Checks that need the whole block. */
static bool check_block(CprDec *x, const CprVmdescBlock *k)
{
    if (!cpr_dec_check_samples(x, k->size, k->nr_samples, k->samples)) {
        return false;
    }
    if (k->flags & ~CPR_RAM_FLAGS_KNOWN) {
        return cpr_dec_fail(x, "unknown RAM block flags");
    }
    if (k->has_file && (k->file.mtime_nsec >= 1000000000u ||
                        k->file.birth_nsec >= 1000000000u)) {
        return cpr_dec_fail(x, "bad file time");
    }
    return true;
}


/* block_entry -- one entry of a RAM block's list (CprEntryFn). */
static bool block_entry(CprDec *x, void *obj, uint32_t tag, const uint8_t *v,
                        uint32_t len)
{
    CprVmdescBlock *k = obj;

    switch (tag) {
    case B_NAME:
        return cpr_dec_str(x, v, len, CPR_VMDESC_MAX_NAME, true, &k->name);
    case B_SIZE:
        if (!cpr_dec_fixed(x, len, 8)) {
            return false;
        }
        k->size = cpr_get64(v);
        return true;
    case B_FLAGS:
        if (!cpr_dec_fixed(x, len, 4)) {
            return false;
        }
        k->flags = cpr_get32(v);
        return true;
    case B_FD_OFFSET:
        if (!cpr_dec_fixed(x, len, 8)) {
            return false;
        }
        k->fd_offset = cpr_get64(v);
        return true;
    case B_MEDIA:
        return cpr_dec_media(x, v, len, &k->media, &k->media_detail);
    case B_FILE:
        if (!cpr_dec_fixed(x, len, FILE_LEN)) {
            return false;
        }
        k->has_file = true;
        k->file.dev = cpr_get64(v);
        k->file.ino = cpr_get64(v + 8);
        k->file.size = cpr_get64(v + 16);
        k->file.mtime_sec = (int64_t)cpr_get64(v + 24);
        k->file.mtime_nsec = cpr_get32(v + 32);
        k->file.nlink = cpr_get32(v + 36);
        return true;
    case B_PATH:
        return cpr_dec_str(x, v, len, CPR_VMDESC_MAX_STR, false, &k->file.path);
    case B_SAMPLES:
        return cpr_dec_samples(x, &k->nr_samples, k->samples, v, len);
    case B_BIRTH:
        if (!cpr_dec_fixed(x, len, BIRTH_LEN) || cpr_get32(v + 12) != 0) {
            return cpr_dec_fail(x, "bad birth time entry");
        }
        k->file.has_birth = true;
        k->file.birth_sec = (int64_t)cpr_get64(v);
        k->file.birth_nsec = cpr_get32(v + 8);
        return true;
    }
    return true;
}

static bool decode_block(CprDec *x, CprVmdescBlock *k, const uint8_t *v,
                         uint32_t len)
{
    const uint32_t need = 1u << B_NAME | 1u << B_SIZE | 1u << B_FLAGS |
                          1u << B_FD_OFFSET | 1u << B_MEDIA | 1u << B_SAMPLES;
    uint32_t seen;

    if (!cpr_dec_entries(x, v, len, B_MAX, 0, block_entry, k, &seen)) {
        return false;
    }
    if ((seen & need) != need) {
        return cpr_dec_fail(x, "RAM block entry lacks a required field");
    }
    if (!(seen & (1u << B_FILE)) != !(seen & (1u << B_PATH)) ||
        ((seen & (1u << B_BIRTH)) && !(seen & (1u << B_FILE)))) {
        return cpr_dec_fail(x, "RAM block has a file identity without a "
                            "path, or the reverse");
    }
    return check_block(x, k);
}

/* disk_entry -- one entry of a disk's list (CprEntryFn). */
static bool disk_entry(CprDec *x, void *obj, uint32_t tag, const uint8_t *v,
                       uint32_t len)
{
    CprVmdescDisk *k = obj;

    switch (tag) {
    case D_NODE:
        return cpr_dec_str(x, v, len, SHORT_STR, false, &k->node);
    case D_FILENAME:
        return cpr_dec_str(x, v, len, CPR_VMDESC_MAX_STR, true, &k->filename);
    case D_DRIVER:
        return cpr_dec_str(x, v, len, SHORT_STR, false, &k->driver);
    case D_SIZE:
        if (!cpr_dec_fixed(x, len, 8)) {
            return false;
        }
        k->size = cpr_get64(v);
        return true;
    case D_FLAGS:
        if (!cpr_dec_fixed(x, len, 4)) {
            return false;
        }
        k->flags = cpr_get32(v);
        return true;
    case D_FILE:
        if (!cpr_dec_fixed(x, len, DISK_FILE_LEN) ||
            cpr_get32(v + 36) != 0 || cpr_get32(v + 52) != 0) {
            return cpr_dec_fail(x, "bad disk file entry");
        }
        k->has_file = true;
        k->dev = cpr_get64(v);
        k->ino = cpr_get64(v + 8);
        k->file_size = cpr_get64(v + 16);
        k->mtime_sec = (int64_t)cpr_get64(v + 24);
        k->mtime_nsec = cpr_get32(v + 32);
        k->ctime_sec = (int64_t)cpr_get64(v + 40);
        k->ctime_nsec = cpr_get32(v + 48);
        return true;
    case D_SAMPLES:
        return cpr_dec_samples(x, &k->nr_samples, k->samples, v, len);
    }
    return true;
}

static bool decode_disk(CprDec *x, CprVmdescDisk *k, const uint8_t *v,
                        uint32_t len)
{
    const uint32_t need = 1u << D_NODE | 1u << D_FILENAME | 1u << D_DRIVER |
                          1u << D_SIZE | 1u << D_FLAGS;
    uint32_t seen;

    if (!cpr_dec_entries(x, v, len, D_MAX, 0, disk_entry, k, &seen)) {
        return false;
    }
    if ((seen & need) != need) {
        return cpr_dec_fail(x, "disk entry lacks a required field");
    }
    if (!(seen & (1u << D_FILE)) != !(seen & (1u << D_SAMPLES))) {
        return cpr_dec_fail(x, "disk has a file without samples, or the "
                            "reverse");
    }
    if (k->flags & ~CPR_DISK_FLAGS_KNOWN) {
        return cpr_dec_fail(x, "unknown disk flags");
    }
    if (k->has_file && (k->mtime_nsec >= 1000000000u ||
                        k->ctime_nsec >= 1000000000u)) {
        return cpr_dec_fail(x, "bad file time");
    }
    return !k->has_file ||
           cpr_dec_check_samples(x, k->file_size, k->nr_samples, k->samples);
}

/*
 * grow_array -- room for element @n of *@arr (of @size bytes each), doubling at
 * each power of two: the count is bounded by the input size.
 */
static bool grow_array(CprDec *x, void **arr, uint32_t n, size_t size)
{
    void *na;

    if (n & (n - 1)) {
        return true;
    }
    na = realloc(*arr, (n ? (size_t)n * 2 : 1) * size);
    if (!na) {
        x->oom = true;
        return cpr_dec_fail(x, "out of memory");
    }
    *arr = na;
    return true;
}

static bool add_disk(CprDec *x, CprVmdesc *d, const uint8_t *v, uint32_t len)
{
    CprVmdescDisk *k;

    if (d->nr_disks >= CPR_VMDESC_MAX_DISKS) {
        return cpr_dec_fail(x, "too many disks");
    }
    if (!grow_array(x, (void **)&d->disks, d->nr_disks, sizeof(*d->disks))) {
        return false;
    }
    k = &d->disks[d->nr_disks++];
    memset(k, 0, sizeof(*k));
    return decode_disk(x, k, v, len);
}

static bool decode_argv(CprDec *x, CprVmdesc *d, const uint8_t *v, uint32_t len)
{
    uint32_t args = 0;

    if (len > CPR_VMDESC_MAX_ARGV) {
        return cpr_dec_fail(x, "argument list longer than 4 MiB");
    }
    if (len && v[len - 1] != 0) {
        return cpr_dec_fail(x, "argument list not NUL-terminated");
    }
    for (uint32_t i = 0; i < len; i++) {
        if (v[i] == 0 && ++args > CPR_VMDESC_MAX_ARGS) {
            return cpr_dec_fail(x, "more than 65536 arguments");
        }
    }
    d->argv = malloc(len ? len : 1);
    if (!d->argv) {
        x->oom = true;
        return cpr_dec_fail(x, "out of memory");
    }
    memcpy(d->argv, v, len);
    d->argv_len = len;
    return true;
}

static bool add_block(CprDec *x, CprVmdesc *d, const uint8_t *v, uint32_t len)
{
    CprVmdescBlock *k;

    if (d->nr_blocks >= CPR_VMDESC_MAX_BLOCKS) {
        return cpr_dec_fail(x, "too many RAM blocks");
    }
    if (!grow_array(x, (void **)&d->blocks, d->nr_blocks, sizeof(*d->blocks))) {
        return false;
    }
    k = &d->blocks[d->nr_blocks++];
    memset(k, 0, sizeof(*k));
    if (!decode_block(x, k, v, len)) {
        return false;
    }
    for (uint32_t i = 0; i + 1 < d->nr_blocks; i++) {
        if (strcmp(d->blocks[i].name, k->name) == 0) {
            return cpr_dec_fail(x, "two RAM blocks of the same name");
        }
    }
    return true;
}

/* top_entry -- one entry of the description's own list (CprEntryFn). */
static bool top_entry(CprDec *x, void *obj, uint32_t tag, const uint8_t *v,
                      uint32_t n)
{
    CprVmdesc *d = obj;

    switch (tag) {
    case T_SEED:
        if (!cpr_dec_fixed(x, n, 8)) {
            return false;
        }
        d->seed = cpr_get64(v);
        return true;
    case T_QEMU_VERSION:
        return cpr_dec_str(x, v, n, SHORT_STR, false, &d->qemu_version);
    case T_KERNEL_RELEASE:
        return cpr_dec_str(x, v, n, SHORT_STR, false, &d->kernel_release);
    case T_MACHINE:
        return cpr_dec_str(x, v, n, SHORT_STR, false, &d->machine);
    case T_CPU:
        return cpr_dec_str(x, v, n, SHORT_STR, false, &d->cpu);
    case T_ARGV:
        return decode_argv(x, d, v, n);
    case T_IMAGE_MEDIA:
        return cpr_dec_media(x, v, n, &d->image_media, &d->image_media_detail);
    case T_RAM_BLOCK:
        return add_block(x, d, v, n);
    case T_DISK:
        /* a version-1 description has none: informational there */
        return d->version < 2 || add_disk(x, d, v, n);
    }
    return true;
}

static bool decode_top(CprDec *x, CprVmdesc *d, const uint8_t *buf, size_t len)
{
    const uint32_t need = 1u << T_SEED | 1u << T_QEMU_VERSION |
                          1u << T_KERNEL_RELEASE | 1u << T_MACHINE |
                          1u << T_CPU | 1u << T_ARGV | 1u << T_IMAGE_MEDIA;
    const uint32_t repeat = 1u << T_RAM_BLOCK | 1u << T_DISK;
    uint32_t seen;

    if (!cpr_dec_entries(x, buf + CPR_VMDESC_HEADER,
                         len - CPR_VMDESC_HEADER, T_TOP_MAX, repeat,
                         top_entry, d, &seen)) {
        return false;
    }
    if ((seen & need) != need) {
        return cpr_dec_fail(x, "a required field is missing");
    }
    return true;
}

CprVmdescResult cpr_vmdesc_decode(const uint8_t *buf, size_t len,
                                  CprVmdesc **out, const char **why)
{
    CprDec x = { 0 };
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
