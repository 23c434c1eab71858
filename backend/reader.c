/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader.h"
#include "errmsg.h"
#include "hash.h"
#include "vmdesc.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NO_BLOCK UINT64_MAX

struct CprReader {
    char *path;
    CprImageFile file;          /* holds the shared lock */
    CprRecord rec;
    uint64_t pos;
    uint64_t nblocks;
    uint64_t *block_xxh3;       /* of each block, as verified by open */
    pthread_mutex_t lock;       /* the cache, for concurrent preads */
    uint8_t *cache;             /* one block, for reads of part of one */
    uint64_t cached;            /* its index, or NO_BLOCK */
    uint8_t *desc_bytes;        /* payload [stream_len, payload_len) */
    CprVmdesc *desc;            /* decoded; NULL for a version-1 record */
};

static uint64_t block_len(const CprReader *r, uint64_t k)
{
    uint64_t left = r->rec.payload_len - k * CPR_READ_BLOCK;

    return left < CPR_READ_BLOCK ? left : CPR_READ_BLOCK;
}

static int read_block(CprReader *r, uint64_t k, uint8_t *buf, char **errp)
{
    uint64_t len = block_len(r, k);
    ssize_t n = cpr_image_pread(&r->file, buf, len,
                                r->rec.payload_off + k * CPR_READ_BLOCK);

    if (n != (ssize_t)len) {
        cpr_error(errp, r->path, "image (generation %llu) became unreadable "
                  "while being read (truncated by another process?)",
                  (unsigned long long)r->rec.generation);
        return -1;
    }
    return 0;
}

/* Block @k into @buf, exactly as it was when open verified it. */
static int load_block(CprReader *r, uint64_t k, uint8_t *buf, char **errp)
{
    if (read_block(r, k, buf, errp) < 0) {
        return -1;
    }
    if (XXH3_64bits(buf, block_len(r, k)) != r->block_xxh3[k]) {
        cpr_error(errp, r->path, "image (generation %llu) changed after it "
                  "was verified (written by another process?); refusing "
                  "to load it", (unsigned long long)r->rec.generation);
        return -1;
    }
    return 0;
}

/* Pick the record to load and refuse anything unsafe to load. */
static int choose_record(CprReader *r, char **errp)
{
    const CprImageFile *f = &r->file;
    const CprSlots *s = &f->slots;
    const CprRecord *rec;

    switch (f->sb_state) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_error(errp, r->path, "image format version %u (superblock) is "
                  "newer than this transport (%u)", f->sb.version,
                  CPR_SB_VERSION);
        return -1;
    default:
        cpr_error(errp, r->path, "not a pmem CPR image (no valid superblock)");
        return -1;
    }
    if (s->newest < 0) {
        bool damaged = s->state[0] == CPR_DECODE_BAD ||
                       s->state[1] == CPR_DECODE_BAD;

        cpr_error(errp, r->path, "no committed image%s",
                  damaged ? " (all commit records are damaged)" : "");
        return -1;
    }
    rec = &s->rec[s->newest];
    if (s->state[s->newest] == CPR_DECODE_TOO_NEW) {
        cpr_error(errp, r->path, "image format version %u is newer than "
                  "this transport (%u)", rec->version, CPR_REC_VERSION);
        return -1;
    }
    if (rec->flags & CPR_REC_FLAG_INVALIDATED) {
        cpr_error(errp, r->path, "image (generation %llu) was invalidated",
                  (unsigned long long)rec->generation);
        return -1;
    }
    if (!cpr_image_payload_present(f, r->path, rec, errp)) {
        return -1;
    }
    r->rec = *rec;
    return 0;
}

/* The part of block @k (in r->cache) that holds VM description bytes. */
static void keep_desc(CprReader *r, uint64_t k)
{
    uint64_t from = k * CPR_READ_BLOCK, to = from + block_len(r, k);
    uint64_t start = r->rec.stream_len;

    if (to <= start) {
        return;
    }
    if (from < start) {
        memcpy(r->desc_bytes, r->cache + (start - from), to - start);
    } else {
        memcpy(r->desc_bytes + (from - start), r->cache, to - from);
    }
}

/* A version-2 record's payload ends with the description of its VM. */
static int decode_desc(CprReader *r, char **errp)
{
    unsigned long long gen = (unsigned long long)r->rec.generation;
    const char *why = NULL;

    if (r->rec.version < 2) {
        return 0;
    }
    switch (cpr_vmdesc_decode(r->desc_bytes, cpr_record_vmdesc_len(&r->rec),
                              &r->desc, &why)) {
    case CPR_VMDESC_OK:
        return 0;
    case CPR_VMDESC_TOO_NEW:
        cpr_error(errp, r->path, "image (generation %llu) describes its VM "
                  "in a newer format than this transport knows", gen);
        return -1;
    case CPR_VMDESC_NOMEM:
        cpr_error(errp, r->path, "out of memory");
        return -1;
    default:
        cpr_error(errp, r->path, "image (generation %llu) has a malformed VM "
                  "description (%s)", gen, why);
        return -1;
    }
}

/*
 * Hash every block, and the payload as a whole, from one read.  No
 * fallback to the older generation on a mismatch: its device state would
 * not match the guest RAM the newer save left behind.
 */
static int verify(CprReader *r, char **errp)
{
    XXH3_state_t *whole = XXH3_createState();
    uint64_t k;
    int ret = -1;

    r->nblocks = (r->rec.payload_len + CPR_READ_BLOCK - 1) / CPR_READ_BLOCK;
    r->block_xxh3 = calloc(r->nblocks ? r->nblocks : 1, sizeof(uint64_t));
    r->cache = malloc(r->nblocks > 1 ? CPR_READ_BLOCK :
                      r->rec.payload_len + 1);
    /* At most CPR_VMDESC_MAX: the record decoder checks that. */
    r->desc_bytes = malloc(cpr_record_vmdesc_len(&r->rec) + 1);
    if (!whole || !r->block_xxh3 || !r->cache || !r->desc_bytes) {
        cpr_error(errp, r->path, "out of memory");
        goto out;
    }
    XXH3_64bits_reset(whole);
    for (k = 0; k < r->nblocks; k++) {
        if (read_block(r, k, r->cache, errp) < 0) {
            goto out;
        }
        r->block_xxh3[k] = XXH3_64bits(r->cache, block_len(r, k));
        XXH3_64bits_update(whole, r->cache, block_len(r, k));
        keep_desc(r, k);
    }
    if (XXH3_64bits_digest(whole) != r->rec.payload_xxh3) {
        cpr_error(errp, r->path, "image (generation %llu) is corrupt: payload "
                  "checksum mismatch", (unsigned long long)r->rec.generation);
        goto out;
    }
    if (decode_desc(r, errp) < 0) {
        goto out;
    }
    /* A small payload is one block: it is served from memory now. */
    r->cached = r->nblocks ? r->nblocks - 1 : NO_BLOCK;
    ret = 0;
out:
    XXH3_freeState(whole);
    return ret;
}

CprReader *cpr_reader_open(const char *path, char **errp)
{
    CprReader *r = calloc(1, sizeof(*r));

    if (!r) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    r->file.fd = -1;
    r->cached = NO_BLOCK;
    pthread_mutex_init(&r->lock, NULL);
    if (!(r->path = strdup(path))) {
        cpr_error(errp, path, "out of memory");
        goto fail;
    }
    if (cpr_image_open_read(path, &r->file, errp) < 0 ||
        choose_record(r, errp) < 0 || verify(r, errp) < 0) {
        goto fail;
    }
    return r;
fail:
    cpr_reader_close(r);
    return NULL;
}

/* Part of block @k through the cache. */
static int copy_from_block(CprReader *r, uint64_t k, uint64_t from,
                           void *buf, size_t len, char **errp)
{
    int ret = 0;

    pthread_mutex_lock(&r->lock);
    if (r->cached != k) {
        r->cached = NO_BLOCK;
        ret = load_block(r, k, r->cache, errp);
        if (ret == 0) {
            r->cached = k;
        }
    }
    if (ret == 0) {
        memcpy(buf, r->cache + from, len);
    }
    pthread_mutex_unlock(&r->lock);
    return ret;
}

ssize_t cpr_reader_pread(CprReader *r, uint64_t off, void *buf, size_t len,
                         char **errp)
{
    uint64_t total = r->rec.stream_len;     /* the VM description is ours */
    size_t done = 0;

    if (off >= total) {
        return 0;
    }
    len = len < total - off ? len : (size_t)(total - off);
    len = len < SSIZE_MAX ? len : SSIZE_MAX;
    while (done < len) {
        uint64_t k = (off + done) / CPR_READ_BLOCK;
        uint64_t from = (off + done) % CPR_READ_BLOCK;
        uint64_t take = block_len(r, k) - from;
        uint8_t *dst = (uint8_t *)buf + done;
        int ret;

        take = take < len - done ? take : len - done;
        /* A whole block goes straight to the caller, checked in place. */
        ret = from == 0 && take == block_len(r, k) ?
              load_block(r, k, dst, errp) :
              copy_from_block(r, k, from, dst, take, errp);
        if (ret < 0) {
            return -1;
        }
        done += take;
    }
    return (ssize_t)done;
}

ssize_t cpr_reader_read(CprReader *r, void *buf, size_t len, char **errp)
{
    ssize_t n = cpr_reader_pread(r, r->pos, buf, len, errp);

    if (n > 0) {
        r->pos += (uint64_t)n;
    }
    return n;
}

const CprRecord *cpr_reader_record(const CprReader *r)
{
    return &r->rec;
}

const CprVmdesc *cpr_reader_vmdesc(const CprReader *r)
{
    return r->desc;
}

const CprImageFile *cpr_reader_file(const CprReader *r)
{
    return &r->file;
}

void cpr_reader_close(CprReader *r)
{
    if (!r) {
        return;
    }
    cpr_image_close(&r->file);
    pthread_mutex_destroy(&r->lock);
    free(r->block_xxh3);
    free(r->cache);
    free(r->desc_bytes);
    cpr_vmdesc_free(r->desc);
    free(r->path);
    free(r);
}

int cpr_reader_inspect(const char *path, CprImageHeader *h, char **errp)
{
    CprImageFile f;

    memset(h, 0, sizeof(*h));
    if (cpr_image_open_read(path, &f, errp) < 0) {
        return -1;
    }
    h->file_size = f.size;
    h->sb_state = f.sb_state;
    h->sb = f.sb;
    h->slots = f.slots;
    cpr_image_close(&f);
    return 0;
}

const char *cpr_reader_path(const CprReader *r)
{
    return r->path;
}
