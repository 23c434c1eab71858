/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The reader's parts: reader.c opens, chooses the record and serves
 * reads, each page checked against the hash open verified;
 * reader-verify.c verifies the payload at open (the page hashes, the
 * checksum, the VM description) and reads payload bytes under the fault
 * guard.
 */
#ifndef CPR_READER_INTERNAL_H
#define CPR_READER_INTERNAL_H

#include "reader.h"
#include "hash.h"
#include "vmdesc.h"

#include <stdbool.h>
#include <stdint.h>

#define PAGE CPR_CSUM_PAGE

struct CprReader {
    CprImage file;              /* holds the shared lock and the path */
    uint64_t verify_id;         /* this verification, for block_holes() */
    bool no_holes;              /* the payload had none: none looked for */
    CprRecord rec;
    uint64_t pos;
    uint64_t npages;
    /* Of each page, as verified by open, XORed with the hash of a page of
     * zeros of its length (page_zero): a hole's page is 0, as mmap()
     * left it, so a sparse payload costs no memory for its holes. */
    uint64_t *page_xxh3;
    size_t page_xxh3_len;
    uint64_t zero_page, zero_last;  /* XXH3 of a zero page, the last's */
    uint64_t zero_block;        /* block hash of a whole block of zeros */
    /* A payload of one block read into memory, as verified; or NULL,
     * and the payload is mapped read-only (map_payload). */
    uint8_t *whole;
    bool whole_prepared;        /* whole is cpr_reader_prepare()'s */
    uint8_t *map;
    size_t map_len;
    const uint8_t *payload;     /* in map */
    uint8_t *desc_bytes;        /* payload [stream_len, payload_len) */
    CprVmdesc *desc;            /* decoded; NULL for a version-1 record */
};

static inline uint64_t nblocks(const CprReader *r)
{
    return (r->rec.payload_len + CPR_CSUM_BLOCK - 1) / CPR_CSUM_BLOCK;
}

static inline uint64_t block_len(const CprReader *r, uint64_t k)
{
    uint64_t left = r->rec.payload_len - k * CPR_CSUM_BLOCK;

    return left < CPR_CSUM_BLOCK ? left : CPR_CSUM_BLOCK;
}

static inline uint64_t page_len(const CprReader *r, uint64_t pg)
{
    uint64_t left = r->rec.payload_len - pg * PAGE;

    return left < PAGE ? left : PAGE;
}

/* The XXH3 of a page of zeros as long as page @pg. */
static inline uint64_t page_zero(const CprReader *r, uint64_t pg)
{
    return page_len(r, pg) == PAGE ? r->zero_page : r->zero_last;
}

/* reader-verify.c: verify the payload of r->rec (open's last step);
 * payload bytes [off, off + len) into @buf, all of them. */
int cpr_reader_verify(CprReader *r, char **errp);
int cpr_reader_read_payload(const CprReader *r, uint64_t off, void *buf,
                            uint64_t len, char **errp);

#endif
