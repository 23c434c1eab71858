/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader-internal.h"
#include "errmsg.h"
#include "image-file.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages read straight into the caller's buffer, at most this many bytes
 * at a time: they are hashed while still in the cache. */
#define RUN (256u << 10)

/* cpr_reader_prepare()'s buffer, a block and a byte, or NULL. */
#define PREPARED_LEN ((size_t)CPR_CSUM_BLOCK + 1)
static _Atomic(uint8_t *) prepared;

void cpr_reader_prepare(void)
{
    uint8_t *p = mmap(NULL, PREPARED_LEN, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

    if (p == MAP_FAILED) {
        return;
    }
    /* The hash's first call picks its code for this CPU (cpuid, a VM
     * exit each) and faults that code in: 25-60 us, here and not in
     * in_open (read_header's, the binding's seeded page hashes). */
    (void)XXH3_64bits(p, PAGE);
    (void)XXH3_64bits_withSeed(p, PAGE, 1);
    if (atomic_exchange(&prepared, p)) {
        munmap(p, PREPARED_LEN);        /* prepared twice: keep the first */
    }
}

void cpr_reader_unprepare(void)
{
    uint8_t *p = atomic_exchange(&prepared, NULL);

    if (p) {
        munmap(p, PREPARED_LEN);
    }
}

static void changed(const CprReader *r, char **errp)
{
    cpr_image_error(&r->file, errp, "image (generation %llu) changed after it "
                    "was verified (written by another process?); refusing "
                    "to load it", (unsigned long long)r->rec.generation);
}

/* Pages [pg, pg + n) in @buf must be what open verified. */
static int check_pages(const CprReader *r, uint64_t pg, uint64_t n,
                       const uint8_t *buf, char **errp)
{
    for (uint64_t i = 0; i < n; i++) {
        if ((XXH3_64bits(buf + i * PAGE, page_len(r, pg + i)) ^
             page_zero(r, pg + i)) != r->page_xxh3[pg + i]) {
            changed(r, errp);
            return -1;
        }
    }
    return 0;
}

/* Pick the record to load and refuse anything unsafe to load. */
static int choose_record(CprReader *r, char **errp)
{
    const CprImage *f = &r->file;
    const CprSlots *s = &f->slots;
    const CprRecord *rec;

    switch (f->sb_state) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_image_error(&r->file, errp, "image format version %u "
                        "(superblock) is newer than this transport (%u)",
                        f->sb.version, CPR_SB_VERSION);
        return -1;
    default:
        cpr_image_error(&r->file, errp, "not a pmem CPR image (no valid "
                        "superblock)");
        return -1;
    }
    if (s->newest < 0) {
        bool damaged = s->state[0] == CPR_DECODE_BAD ||
                       s->state[1] == CPR_DECODE_BAD;

        cpr_image_error(&r->file, errp, "no committed image%s",
                        damaged ? " (all commit records are damaged)" : "");
        return -1;
    }
    rec = &s->rec[s->newest];
    if (s->state[s->newest] == CPR_DECODE_TOO_NEW) {
        cpr_image_error(&r->file, errp, "image format version %u is newer than "
                        "this transport (%u)", rec->version, CPR_REC_VERSION);
        return -1;
    }
    if (rec->flags & CPR_REC_FLAG_INVALIDATED) {
        cpr_image_error(&r->file, errp, "image (generation %llu) was "
                        "invalidated", (unsigned long long)rec->generation);
        return -1;
    }
    if (!cpr_image_payload_present(f, rec, errp)) {
        return -1;
    }
    r->rec = *rec;
    return 0;
}

CprReader *cpr_reader_open(const char *path, char **errp)
{
    return cpr_reader_open_peek(path, NULL, NULL, errp);
}

CprReader *cpr_reader_open_peek(const char *path, CprReaderPeek peek,
                                void *opaque, char **errp)
{
    CprReader *r = calloc(1, sizeof(*r));

    if (!r) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    r->file.fd = -1;
    if (cpr_image_open_read(path, &r->file, errp) < 0 ||
        choose_record(r, errp) < 0) {
        goto fail;
    }
    if (peek) {
        peek(&r->file, &r->rec, opaque);
    }
    if (r->rec.payload_len <= CPR_CSUM_BLOCK) {
        r->whole = atomic_exchange(&prepared, NULL);
        r->whole_prepared = r->whole != NULL;
    }
    if (cpr_reader_verify(r, errp) < 0) {
        goto fail;
    }
    return r;
fail:
    cpr_reader_close(r);
    return NULL;
}

/*
 * Stream bytes [off, off + len) into @buf, each page checked against the
 * hash open verified: whole pages straight into @buf, a page the read
 * covers in part through a page of its own.  No state is shared between
 * calls, so any number of threads may read at once.
 */
static int serve(CprReader *r, uint64_t off, uint8_t *buf, uint64_t len,
                 char **errp)
{
    uint8_t page[PAGE];

    while (len) {
        uint64_t pg = off / PAGE, from = off % PAGE, plen = page_len(r, pg);
        uint64_t take;

        if (from == 0 && len >= plen) {
            /* A run of whole pages (the payload's last may be short). */
            uint64_t n = len / PAGE ? len / PAGE : 1;

            n = n < RUN / PAGE ? n : RUN / PAGE;
            n = n < r->npages - pg ? n : r->npages - pg;
            take = (n - 1) * PAGE + page_len(r, pg + n - 1);
            if (take > len) {
                n--;
                take = n * PAGE;
            }
            if (cpr_reader_read_payload(r, off, buf, take, errp) < 0 ||
                check_pages(r, pg, n, buf, errp) < 0) {
                return -1;
            }
        } else {
            take = plen - from < len ? plen - from : len;
            if (cpr_reader_read_payload(r, pg * PAGE, page, plen, errp) < 0 ||
                check_pages(r, pg, 1, page, errp) < 0) {
                return -1;
            }
            memcpy(buf, page + from, take);
        }
        off += take;
        buf += take;
        len -= take;
    }
    return 0;
}

ssize_t cpr_reader_pread(CprReader *r, uint64_t off, void *buf, size_t len,
                         char **errp)
{
    uint64_t total = r->rec.stream_len;     /* the VM description is ours */

    if (off >= total) {
        return 0;
    }
    len = len < total - off ? len : (size_t)(total - off);
    len = len < SSIZE_MAX ? len : SSIZE_MAX;
    if (r->whole) {
        memcpy(buf, r->whole + off, len);
    } else if (serve(r, off, buf, len, errp) < 0) {
        return -1;
    }
    return (ssize_t)len;
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

const uint8_t *cpr_reader_vmdesc_bytes(const CprReader *r, size_t *len)
{
    *len = r->desc ? (size_t)cpr_record_vmdesc_len(&r->rec) : 0;
    return r->desc ? r->desc_bytes : NULL;
}

const CprImage *cpr_reader_file(const CprReader *r)
{
    return &r->file;
}

void cpr_reader_close(CprReader *r)
{
    if (!r) {
        return;
    }
    if (r->map) {
        munmap(r->map, r->map_len);
    }
    cpr_image_close(&r->file);
    if (r->page_xxh3) {
        munmap(r->page_xxh3, r->page_xxh3_len);
    }
    if (r->whole_prepared) {
        munmap(r->whole, PREPARED_LEN);
    } else {
        free(r->whole);
    }
    free(r->desc_bytes);
    cpr_vmdesc_free(r->desc);
    free(r);
}

bool cpr_reader_payload_verifies(const CprImage *f, const CprRecord *rec)
{
    int64_t hole;
    CprReader *r;
    char *err = NULL;
    bool ok;

    if (!f->sparse || rec->version < 3) {
        return true;    /* no hole, or refused already if one */
    }
    hole = cpr_image_find_hole(f->fd, rec->payload_off, rec->payload_len);
    if (hole >= 0 && (uint64_t)hole >= rec->payload_off + rec->payload_len) {
        return true;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        return false;
    }
    /* The caller's image under the caller's lock: a descriptor of our own
     * (closing it drops no lock while the caller's stays open); the
     * caller's path, which the caller frees. */
    r->file = *f;
    r->file.fd = dup(f->fd);
    r->rec = *rec;
    ok = r->file.fd >= 0 && cpr_reader_verify(r, &err) == 0;
    free(err);
    r->file.path = NULL;
    cpr_reader_close(r);
    return ok;
}

const char *cpr_reader_path(const CprReader *r)
{
    return cpr_image_path(&r->file);
}
