/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader.h"
#include "errmsg.h"
#include "fault-guard.h"
#include "hash.h"
#include "media.h"
#include "parallel.h"
#include "vmdesc.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE CPR_CSUM_PAGE

/* Verification takes other threads for payloads this large. */
#define PARALLEL_MIN (32ull << 20)

/* Pages read straight into the caller's buffer, at most this many bytes
 * at a time: they are hashed while still in the cache. */
#define RUN (256u << 10)

struct CprReader {
    CprImage file;              /* holds the shared lock and the path */
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
    uint8_t *whole;             /* a payload of one block, as verified */
    /* A larger one, mapped read-only (map_payload), or NULL. */
    uint8_t *map;
    size_t map_len;
    const uint8_t *payload;     /* in map */
    uint8_t *desc_bytes;        /* payload [stream_len, payload_len) */
    CprVmdesc *desc;            /* decoded; NULL for a version-1 record */
};

static uint64_t nblocks(const CprReader *r)
{
    return (r->rec.payload_len + CPR_CSUM_BLOCK - 1) / CPR_CSUM_BLOCK;
}

static uint64_t block_len(const CprReader *r, uint64_t k)
{
    uint64_t left = r->rec.payload_len - k * CPR_CSUM_BLOCK;

    return left < CPR_CSUM_BLOCK ? left : CPR_CSUM_BLOCK;
}

static uint64_t page_len(const CprReader *r, uint64_t pg)
{
    uint64_t left = r->rec.payload_len - pg * PAGE;

    return left < PAGE ? left : PAGE;
}

/* The XXH3 of a page of zeros as long as page @pg. */
static uint64_t page_zero(const CprReader *r, uint64_t pg)
{
    return page_len(r, pg) == PAGE ? r->zero_page : r->zero_last;
}

static void lost(const CprReader *r, char **errp)
{
    cpr_image_error(&r->file, errp, "image (generation %llu) became unreadable "
                    "while being read (truncated by another process?)",
                    (unsigned long long)r->rec.generation);
}

static void changed(const CprReader *r, char **errp)
{
    cpr_image_error(&r->file, errp, "image (generation %llu) changed after it "
                    "was verified (written by another process?); refusing "
                    "to load it", (unsigned long long)r->rec.generation);
}

/* The XXH3 of each page of the @len payload bytes at @src, page @pg on,
 * into page_xxh3. */
static void hash_pages(const CprReader *r, const uint8_t *src, uint64_t len,
                       uint64_t pg)
{
    for (uint64_t o = 0; o < len; o += PAGE, pg++) {
        r->page_xxh3[pg] = XXH3_64bits(src + o, page_len(r, pg)) ^
                           page_zero(r, pg);
    }
}

/* One guarded access to the mapped payload. */
typedef struct Access {
    const CprReader *r;
    uint8_t *dst;
    const uint8_t *src;
    uint64_t len;
    uint64_t pg;                /* do_hash_pages: the first page */
} Access;

static void do_copy(void *opaque)
{
    Access *a = opaque;

    memcpy(a->dst, a->src, a->len);
}

static void do_hash_pages(void *opaque)
{
    Access *a = opaque;

    hash_pages(a->r, a->src, a->len, a->pg);
}

static int guarded(const CprReader *r, void (*fn)(void *), Access *a,
                   char **errp)
{
    if (cpr_fault_guard(r->map, r->map_len, fn, a) < 0) {
        lost(r, errp);
        return -1;
    }
    return 0;
}

/* Payload bytes [off, off + len) into @buf, all of them. */
static int read_payload(const CprReader *r, uint64_t off, void *buf,
                        uint64_t len, char **errp)
{
    ssize_t n;

    if (r->map) {
        Access a = { r, buf, r->payload + off, len, 0 };

        return guarded(r, do_copy, &a, errp);
    }
    n = cpr_image_pread(&r->file, buf, len, r->rec.payload_off + off);
    if (n != (ssize_t)len) {
        lost(r, errp);
        return -1;
    }
    return 0;
}

/* Whether page @i of a block is in @holes. */
static bool is_hole(const uint64_t *holes, uint64_t i)
{
    return holes[i / 64] >> (i % 64) & 1;
}

/*
 * Which pages of block @k lie wholly in a hole of the file, as bits of
 * @holes; returns how many (-1 on error).  Only a sparse file is
 * searched: a payload the writer committed has no holes, but a copy
 * made with "cp --sparse=always" or "rsync -S" has them wherever the
 * payload is zeros, and the checksum, not the hole, decides.
 */
static int block_holes(const CprReader *r, uint64_t k, uint64_t *holes,
                       char **errp)
{
    uint64_t start = r->rec.payload_off + k * CPR_CSUM_BLOCK;
    uint64_t end = start + block_len(r, k), pos = start;
    uint64_t n = (block_len(r, k) + PAGE - 1) / PAGE;
    int count = 0;

    memset(holes, 0, CPR_CSUM_PAGES_PER_BLOCK / 8);
    while (r->file.sparse && pos < end) {
        off_t d = lseek(r->file.fd, (off_t)pos, SEEK_DATA);
        uint64_t data, from, to;

        /* ENXIO: no data from @pos to the end of the file. */
        if (d < 0 && errno != ENXIO) {
            cpr_image_error_errno(&r->file, errp, errno,
                                  "cannot look for holes");
            return -1;
        }
        data = d < 0 || (uint64_t)d > end ? end : (uint64_t)d;
        /* [pos, data) is a hole: the pages wholly inside it. */
        from = (pos - start + PAGE - 1) / PAGE;
        to = data == end ? n : (data - start) / PAGE;
        for (uint64_t i = from; i < to;) {
            uint64_t bits = to - i < 64 - i % 64 ? to - i : 64 - i % 64;

            holes[i / 64] |= (bits == 64 ? ~0ull : ((1ull << bits) - 1))
                             << (i % 64);
            count += (int)bits;
            i += bits;
        }
        if (data == end) {
            break;
        }
        d = lseek(r->file.fd, (off_t)data, SEEK_HOLE);
        if (d < 0) {
            cpr_image_error_errno(&r->file, errp, errno,
                                  "cannot look for holes");
            return -1;
        }
        pos = (uint64_t)d > data ? (uint64_t)d : data + 1;
    }
    return count;
}

/*
 * The hashes of the pages of block @k into page_xxh3, and the block into
 * @buf: read there unless mapped and free of VM description bytes.  A
 * block keep_desc() takes bytes from is hashed from the copy, never from
 * the mapping: the description decoded must be the bytes verified.
 * Pages in a hole are not read (a read fault on a tmpfs hole allocates
 * it): they are zeros, left 0 in page_xxh3, and zeroed in @buf only
 * where its bytes are used (@need_bytes).  *@all_hole: the whole block.
 */
static int hash_block(CprReader *r, uint64_t k, uint8_t *buf, bool need_bytes,
                      bool *all_hole, char **errp)
{
    uint64_t len = block_len(r, k), first = k * CPR_CSUM_PAGES_PER_BLOCK;
    uint64_t n = (len + PAGE - 1) / PAGE, holes[CPR_CSUM_PAGES_PER_BLOCK / 64];
    int nholes = block_holes(r, k, holes, errp);

    *all_hole = nholes > 0 && (uint64_t)nholes == n;
    if (nholes < 0) {
        return -1;
    }
    if (*all_hole) {
        if (need_bytes) {
            memset(buf, 0, len);
        }
        return 0;
    }
    if (nholes == 0) {
        if (r->map && k * CPR_CSUM_BLOCK + len <= r->rec.stream_len) {
            Access a = { r, NULL, r->payload + k * CPR_CSUM_BLOCK, len,
                         first };

            return guarded(r, do_hash_pages, &a, errp);
        }
        if (read_payload(r, k * CPR_CSUM_BLOCK, buf, len, errp) < 0) {
            return -1;
        }
        hash_pages(r, buf, len, first);
        return 0;
    }
    for (uint64_t i = 0, j; i < n; i = j) {
        bool hole = is_hole(holes, i);
        uint64_t off = i * PAGE, run;

        for (j = i + 1; j < n && is_hole(holes, j) == hole; j++) {
        }
        run = (j * PAGE < len ? j * PAGE : len) - off;
        if (hole) {
            if (need_bytes) {
                memset(buf + off, 0, run);
            }
            continue;
        }
        if (read_payload(r, k * CPR_CSUM_BLOCK + off, buf + off, run,
                         errp) < 0) {
            return -1;
        }
        hash_pages(r, buf + off, run, first + i);
    }
    return 0;
}

/* The hash of block @k from its page hashes (version 3). */
static uint64_t block_xxh3(const CprReader *r, uint64_t k, bool all_hole)
{
    uint64_t first = k * CPR_CSUM_PAGES_PER_BLOCK;
    uint64_t n = (block_len(r, k) + PAGE - 1) / PAGE;
    uint64_t h[CPR_CSUM_PAGES_PER_BLOCK];

    if (all_hole && n == CPR_CSUM_PAGES_PER_BLOCK) {
        return r->zero_block;
    }
    for (uint64_t i = 0; i < n; i++) {
        h[i] = r->page_xxh3[first + i] ^ page_zero(r, first + i);
    }
    return cpr_csum_list(h, n);
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

/* The part of block @k (in @buf) that holds VM description bytes. */
static void keep_desc(CprReader *r, uint64_t k, const uint8_t *buf)
{
    uint64_t from = k * CPR_CSUM_BLOCK, to = from + block_len(r, k);
    uint64_t start = r->rec.stream_len;

    if (to <= start) {
        return;
    }
    from = from < start ? start : from;
    memcpy(r->desc_bytes + (from - start), buf + (from - k * CPR_CSUM_BLOCK),
           to - from);
}

/* From version 2, a record's payload ends with the description of its
 * VM. */
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
        cpr_image_error(&r->file, errp, "image (generation %llu) describes "
                        "its VM in a newer format than this transport knows",
                        gen);
        return -1;
    case CPR_VMDESC_NOMEM:
        cpr_image_error(&r->file, errp, "out of memory");
        return -1;
    default:
        cpr_image_error(&r->file, errp, "image (generation %llu) has a "
                        "malformed VM description (%s)", gen, why);
        return -1;
    }
}

/* Verification of one block of a version-3 payload (cpr_parallel_for). */
typedef struct Verify {
    CprReader *r;
    uint64_t *blocks;           /* each block's hash */
} Verify;

static int verify_block(void *ctx, uint64_t k, void *buf, char **errp)
{
    Verify *v = ctx;
    CprReader *r = v->r;
    bool all_hole;

    if (hash_block(r, k, buf, k * CPR_CSUM_BLOCK + block_len(r, k) >
                   r->rec.stream_len, &all_hole, errp) < 0) {
        return -1;
    }
    keep_desc(r, k, buf);
    v->blocks[k] = block_xxh3(r, k, all_hole);
    return 0;
}

/* Version 3: every block on its own, on as many threads as the payload
 * is worth; then the checksum of the block hashes. */
static int verify_pages(CprReader *r, uint64_t *csum, char **errp)
{
    uint64_t n = nblocks(r);
    Verify v = { .r = r, .blocks = malloc((n ? n : 1) * sizeof(uint64_t)) };
    int ret;

    if (!v.blocks) {
        cpr_image_error(&r->file, errp, "out of memory");
        return -1;
    }
    ret = cpr_parallel_for(n, r->rec.payload_len / PARALLEL_MIN + 1,
                           CPR_CSUM_BLOCK, verify_block, &v,
                           cpr_image_path(&r->file), errp);
    if (ret == 0) {
        *csum = cpr_csum_list(v.blocks, n);
    }
    free(v.blocks);
    return ret;
}

/* Versions 1 and 2: one XXH3 of the whole payload, block after block. */
static int verify_whole(CprReader *r, uint64_t *csum, char **errp)
{
    XXH3_state_t *whole = XXH3_createState();
    uint8_t *buf = malloc(CPR_CSUM_BLOCK);
    int ret = -1;

    if (!whole || !buf) {
        cpr_image_error(&r->file, errp, "out of memory");
        goto out;
    }
    XXH3_64bits_reset(whole);
    for (uint64_t k = 0; k < nblocks(r); k++) {
        uint64_t len = block_len(r, k);

        /* Read once, into @buf, mapped or not: both hashes from there. */
        if (read_payload(r, k * CPR_CSUM_BLOCK, buf, len, errp) < 0) {
            goto out;
        }
        hash_pages(r, buf, len, k * CPR_CSUM_PAGES_PER_BLOCK);
        XXH3_64bits_update(whole, buf, len);
        keep_desc(r, k, buf);
    }
    *csum = XXH3_64bits_digest(whole);
    ret = 0;
out:
    XXH3_freeState(whole);
    free(buf);
    return ret;
}

/*
 * A payload larger than a block, on memory-like media (tmpfs, DAX), is
 * read through a read-only mapping: it is hashed in place, and served
 * with a copy from it, where pread copies through the page cache at
 * half the speed (a restore of 1 GiB with two multifd channels: 311 ms
 * against 416 ms with pread, medians of 24).  Every access runs under
 * the fault guard: a truncation is an error, not a SIGBUS.  Pages in a
 * hole are not touched (tmpfs fills a hole on a read fault): they are
 * hashed as zeros (hash_block), and the checksum decides.  On a disk filesystem, and if it cannot be
 * mapped, the payload is read with pread, whose readahead suits a
 * device better than faults.
 */
static void map_payload(CprReader *r)
{
    long pagesize = sysconf(_SC_PAGESIZE);
    uint64_t from = r->rec.payload_off / (uint64_t)pagesize * pagesize;
    uint64_t len = r->rec.payload_off + r->rec.payload_len - from;
    char detail[96];
    CprMedia media = cpr_media_of_file(r->file.fd, detail, sizeof(detail));
    void *m;

    if ((media != CPR_MEDIA_PMEM && media != CPR_MEDIA_VOLATILE) ||
        len > SIZE_MAX) {
        return;
    }
    m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, r->file.fd,
             (off_t)from);
    if (m == MAP_FAILED) {
        return;
    }
    r->map = m;
    r->map_len = (size_t)len;
    r->payload = r->map + (r->rec.payload_off - from);
}

/*
 * Hash every page, and the payload as a whole.  No fallback to the older
 * generation on a mismatch: its device state would not match the guest
 * RAM the newer save left behind.
 */
static int verify(CprReader *r, char **errp)
{
    uint64_t csum = 0;
    int ret;

    r->npages = (r->rec.payload_len + PAGE - 1) / PAGE;
    /* Mapped, not calloc()ed: the pages of a hole's entries stay
     * untouched, whatever malloc does (MALLOC_PERTURB_ fills). */
    r->page_xxh3_len = (r->npages ? r->npages : 1) * sizeof(uint64_t);
    r->page_xxh3 = mmap(NULL, r->page_xxh3_len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r->page_xxh3 == MAP_FAILED) {
        r->page_xxh3 = NULL;
    }
    /* At most CPR_VMDESC_MAX: the record decoder checks that. */
    r->desc_bytes = malloc(cpr_record_vmdesc_len(&r->rec) + 1);
    if (!r->page_xxh3 || !r->desc_bytes) {
        cpr_image_error(&r->file, errp, "out of memory");
        return -1;
    }
    {
        static const uint8_t zeros[PAGE];
        uint64_t last = r->rec.payload_len % PAGE, h[CPR_CSUM_PAGES_PER_BLOCK];

        r->zero_page = XXH3_64bits(zeros, PAGE);
        r->zero_last = last ? XXH3_64bits(zeros, last) : r->zero_page;
        for (size_t i = 0; i < CPR_CSUM_PAGES_PER_BLOCK; i++) {
            h[i] = r->zero_page;
        }
        r->zero_block = cpr_csum_list(h, CPR_CSUM_PAGES_PER_BLOCK);
    }
    if (r->rec.payload_len <= CPR_CSUM_BLOCK) {
        bool all_hole = false;

        /* One block: read once, and served from memory from now on. */
        r->whole = malloc(r->rec.payload_len + 1);
        if (!r->whole) {
            cpr_image_error(&r->file, errp, "out of memory");
            return -1;
        }
        if (r->rec.payload_len) {
            if (hash_block(r, 0, r->whole, true, &all_hole, errp) < 0) {
                return -1;
            }
            keep_desc(r, 0, r->whole);
        }
        if (r->rec.version < 3) {
            csum = XXH3_64bits(r->whole, r->rec.payload_len);
        } else {
            uint64_t block = block_xxh3(r, 0, all_hole);

            /* The checksum of one block hash, or of none. */
            csum = cpr_csum_list(&block, r->npages ? 1 : 0);
        }
        ret = 0;
    } else {
        map_payload(r);
        ret = r->rec.version >= 3 ? verify_pages(r, &csum, errp) :
              verify_whole(r, &csum, errp);
    }
    if (ret < 0) {
        return -1;
    }
    if (csum != r->rec.payload_xxh3) {
        cpr_image_error(&r->file, errp, "image (generation %llu) is corrupt: "
                        "payload checksum mismatch",
                        (unsigned long long)r->rec.generation);
        return -1;
    }
    return decode_desc(r, errp);
}

CprReader *cpr_reader_open(const char *path, char **errp)
{
    CprReader *r = calloc(1, sizeof(*r));

    if (!r) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    r->file.fd = -1;
    if (cpr_image_open_read(path, &r->file, errp) < 0 ||
        choose_record(r, errp) < 0 || verify(r, errp) < 0) {
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
            if (read_payload(r, off, buf, take, errp) < 0 ||
                check_pages(r, pg, n, buf, errp) < 0) {
                return -1;
            }
        } else {
            take = plen - from < len ? plen - from : len;
            if (read_payload(r, pg * PAGE, page, plen, errp) < 0 ||
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
    free(r->whole);
    free(r->desc_bytes);
    cpr_vmdesc_free(r->desc);
    free(r);
}

int cpr_reader_inspect(const char *path, CprImageHeader *h, char **errp)
{
    CprImage f;

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
    ok = r->file.fd >= 0 && verify(r, &err) == 0;
    free(err);
    r->file.path = NULL;
    cpr_reader_close(r);
    return ok;
}

const char *cpr_reader_path(const CprReader *r)
{
    return cpr_image_path(&r->file);
}
