/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * On-media layout of a pmem CPR image (see FORMAT.md) and pure
 * encode/decode/validate functions.  No I/O: the decoders accept any bytes
 * (they are a fuzzing target) and never read outside the buffer given.
 */
#ifndef CPR_FORMAT_H
#define CPR_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Versions of the two structures (FORMAT.md).  The superblock is still
 * version 1; records are version 3: version 2's layout (v1 plus the
 * stream length: the payload also holds the VM description) with the
 * payload checksum taken over pages (below) instead of over the payload
 * as one run.  v1 and v2 records still load.
 */
#define CPR_SB_VERSION 1u
#define CPR_REC_VERSION 3u

#define CPR_BLOCK_SIZE 4096u
#define CPR_SB_OFFSET 0u
#define CPR_SLOT_OFFSET(i) (CPR_BLOCK_SIZE * (1u + (unsigned)(i)))
#define CPR_NR_SLOTS 2u
#define CPR_HEADER_SIZE (CPR_BLOCK_SIZE * 3u)
/* Payloads start 2 MiB-aligned so that DAX can map them with huge pages. */
#define CPR_ALIGN (2u << 20)
#define CPR_PAYLOAD_AREA CPR_ALIGN

#define CPR_SB_MAGIC "QCPRPMSB"
#define CPR_REC_MAGIC "QCPRPMRC"
#define CPR_MAGIC_LEN 8u

#define CPR_SB_SIZE 64u
#define CPR_REC_V1_SIZE 184u
#define CPR_REC_V2_SIZE 192u
#define CPR_REC_V3_SIZE 192u
/* Size of a record of the current version, and the most any encodes. */
#define CPR_REC_SIZE CPR_REC_V3_SIZE

/*
 * The version-3 payload checksum (FORMAT.md): XXH3 of each 4 KiB page,
 * XXH3 of each 1 MiB block's page hashes, XXH3 of the block hashes; so
 * pages can be hashed in any order, on any thread, as they are written.
 */
#define CPR_CSUM_PAGE 4096u
#define CPR_CSUM_BLOCK (1u << 20)
#define CPR_CSUM_PAGES_PER_BLOCK (CPR_CSUM_BLOCK / CPR_CSUM_PAGE)

/* Generations are 1 .. INT64_MAX, so every consumer (JSON included) can
 * hold one as a signed 64-bit integer. */
#define CPR_MAX_GENERATION ((uint64_t)INT64_MAX)

#define CPR_REC_FLAG_INVALIDATED (1ull << 0)
#define CPR_REC_FLAGS_KNOWN CPR_REC_FLAG_INVALIDATED

#define CPR_QEMU_VERSION_LEN 32u
#define CPR_KERNEL_RELEASE_LEN 65u

typedef enum CprDecode {
    CPR_DECODE_OK,
    CPR_DECODE_EMPTY,   /* all zeros: nothing was ever written there */
    CPR_DECODE_BAD,     /* wrong magic, size, checksum or field */
    CPR_DECODE_TOO_NEW, /* intact, but a format version we do not know */
} CprDecode;

typedef struct CprSuperblock {
    uint32_t version;
    uint8_t uuid[16];
    uint64_t ctime_ns;
} CprSuperblock;

typedef struct CprRecord {
    uint32_t version;
    uint64_t generation;
    uint64_t flags;
    uint64_t payload_off;
    uint64_t payload_len;
    uint64_t payload_xxh3;
    uint64_t ctime_ns;
    /* NUL-terminated; longer strings are truncated by the encoder. */
    char qemu_version[CPR_QEMU_VERSION_LEN];
    char kernel_release[CPR_KERNEL_RELEASE_LEN];
    uint64_t cmdline_fp;
    /*
     * Version 2: the stream is payload bytes [0, stream_len), the VM
     * description [stream_len, payload_len).  A decoded version-1 record
     * has stream_len == payload_len (all stream, no description).
     */
    uint64_t stream_len;
} CprRecord;

/*
 * Fill buf[0, CPR_SB_SIZE) / buf[0, CPR_REC_SIZE).  A record is encoded in
 * the layout of its @version: 184 bytes for version 1, else 192 (the rest
 * of the CPR_REC_SIZE bytes is zero).  Returns the size written.
 */
void cpr_sb_encode(const CprSuperblock *sb, uint8_t *buf);
size_t cpr_record_encode(const CprRecord *rec, uint8_t *buf);

/*
 * Decode from buf[0, len).  @sb / @rec is filled for OK; for TOO_NEW only
 * version (and, for a record, generation) are meaningful.
 */
CprDecode cpr_sb_decode(const uint8_t *buf, size_t len, CprSuperblock *sb);
CprDecode cpr_record_decode(const uint8_t *buf, size_t len, CprRecord *rec);

/* XXH3 of @n 64-bit values, each as 8 little-endian bytes: a block's
 * hash from its page hashes, the checksum from the block hashes. */
uint64_t cpr_csum_list(const uint64_t *h, size_t n);

/*
 * The version-3 checksum tree (FORMAT.md), built here alone: a block's
 * hash from the hashes of its (up to CPR_CSUM_PAGES_PER_BLOCK) pages,
 * the payload's from its blocks' hashes, and the whole tree from the
 * hash of every page (-1 only when out of memory).  The writer builds
 * the tree from its page ledger, the reader verifies block by block,
 * cpr_csum_payload() hashes a payload in memory.
 */
static inline uint64_t cpr_csum_block(const uint64_t *page_xxh3, size_t n)
{
    return cpr_csum_list(page_xxh3, n);
}

static inline uint64_t cpr_csum_top(const uint64_t *block_xxh3, size_t n)
{
    return cpr_csum_list(block_xxh3, n);
}

int cpr_csum_tree(const uint64_t *page_xxh3, uint64_t npages,
                  uint64_t *csum);

/* XXH3 of a whole 4 KiB page of zeros. */
uint64_t cpr_csum_zero_page(void);

/* The version-3 checksum of @len bytes at @buf, for payloads in memory. */
uint64_t cpr_csum_payload(const void *buf, uint64_t len);

/* The payload checksum a record of @version holds for @len bytes at @buf:
 * XXH3 of the whole for versions 1 and 2, cpr_csum_payload() from 3. */
uint64_t cpr_record_checksum(uint32_t version, const void *buf, uint64_t len);

/*
 * The envelope every structure of FORMAT.md keeps (the superblock, the
 * records, the exec: helper's status block): magic (CPR_MAGIC_LEN bytes),
 * version, size, and the XXH3 of everything before the last 8 bytes.  A
 * newer version may grow the structure but keeps this envelope, so
 * "intact but too new" is knowable.  EMPTY: the first @max_size bytes
 * are zero.  @version and @size_out are set once the magic matched.
 */
CprDecode cpr_decode_envelope(const uint8_t *buf, size_t len,
                              const char *magic, uint32_t min_size,
                              uint32_t max_size, uint32_t max_version,
                              uint32_t *version, uint32_t *size_out);

/* Whether the @len bytes at @p are all zero. */
bool cpr_all_zero(const uint8_t *p, size_t len);

/* A fixed string field into @out (@field bytes): valid if it holds a NUL
 * and only NULs after it. */
bool cpr_get_str(const uint8_t *p, size_t field, char *out);

/* Whether the payload of @rec lies inside a file of @file_size bytes. */
bool cpr_record_fits(const CprRecord *rec, uint64_t file_size);

/* Bytes of VM description in the payload of @rec (0 for version 1). */
static inline uint64_t cpr_record_vmdesc_len(const CprRecord *rec)
{
    return rec->payload_len - rec->stream_len;
}

/* Index of the slot that holds generation @gen. */
static inline unsigned cpr_slot_for(uint64_t gen)
{
    return (unsigned)(gen % CPR_NR_SLOTS);
}

/* Both commit record slots, decoded, and which one is the newest. */
typedef struct CprSlots {
    CprDecode state[CPR_NR_SLOTS];
    CprRecord rec[CPR_NR_SLOTS];
    int newest;     /* slot of the highest intact generation, or -1 */
} CprSlots;

/*
 * Decode the slots from the first CPR_HEADER_SIZE bytes of an image.  A
 * record whose generation does not belong in its slot counts as BAD: the
 * writer relies on the live record never sharing a slot with the next.
 */
void cpr_slots_decode(const uint8_t *header, CprSlots *s);

#endif
