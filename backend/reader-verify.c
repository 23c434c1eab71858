/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Verifying a payload at open (reader-internal.h). */
#include "reader-internal.h"
#include "fault-guard.h"
#include "image-file.h"
#include "parallel.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/param.h>
#include <unistd.h>

/* Verification takes other threads for payloads this large. */
#define PARALLEL_MIN (32ull << 20)

/*
 * A payload this large is mapped when it can be (map_payload), unless
 * it fits the buffer cpr_reader_prepare() faulted in at load: a cold
 * process pays a page fault per page of a buffer it reads into (a
 * 450 KiB payload on tmpfs: 220 us for malloc, pread and hashing, 60 us
 * hashed through a mapping).  Smaller ones are read into memory once.
 */
#define MAP_MIN (64u << 10)

static void lost(const CprReader *r, char **errp)
{
    cpr_image_error(&r->file, errp, "image (generation %llu) became unreadable "
                    "while being read (truncated by another process?)",
                    (unsigned long long)r->rec.generation);
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

/* The access of this mapping's own (cpr_access_copy() copies). */
static void do_hash_pages(CprAccess *a)
{
    hash_pages(a->ctx, a->src, a->len, a->arg);
}

/* @a, with its op, on the mapped payload under the fault guard. */
static int guarded(const CprReader *r, void (*op)(CprAccess *), CprAccess *a,
                   char **errp)
{
    a->op = op;
    a->ctx = r;
    if (cpr_fault_guard_access(r->map, r->map_len, a) < 0) {
        lost(r, errp);
        return -1;
    }
    return 0;
}

/* Payload bytes [off, off + len) into @buf, all of them. */
int cpr_reader_read_payload(const CprReader *r, uint64_t off, void *buf,
                        uint64_t len, char **errp)
{
    ssize_t n;

    if (r->map) {
        CprAccess a = { .dst = buf, .src = r->payload + off, .len = len };

        return guarded(r, cpr_access_copy, &a, errp);
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
 * The run of holes or data around a file offset, as one lseek() found
 * it, kept per thread for the blocks after: a run often spans many
 * blocks, and tmpfs walks the pages of a run given blocks but never
 * written (the gaps a save fills, which SEEK_DATA skips as holes) page
 * by page, so asking again per block made a restore quadratic (seconds
 * for 1 GiB).  Valid only for the verification it was found in.
 */
typedef struct {
    uint64_t id;                /* CprReader.verify_id, 0: none */
    uint64_t from, to;          /* [from, to) is all hole or all data */
    bool hole;
} Run;

static _Thread_local Run run;
static _Atomic uint64_t verify_ids;

/* next_run -- the run @pos starts or lies in: hole or data up to *@to */
static int next_run(const CprReader *r, uint64_t pos, bool *hole,
                    uint64_t *to)
{
    off_t d;

    if (run.id != r->verify_id || pos < run.from || pos >= run.to) {
        d = lseek(r->file.fd, (off_t)pos, SEEK_DATA);
        /* ENXIO: no data from @pos to the end of the file. */
        if (d < 0 && errno != ENXIO) {
            return -1;
        }
        if (d < 0 || (uint64_t)d > pos) {
            run = (Run){ r->verify_id, pos, d < 0 ? UINT64_MAX : (uint64_t)d,
                         true };
        } else {
            d = lseek(r->file.fd, (off_t)pos, SEEK_HOLE);
            if (d < 0) {
                return -1;
            }
            run = (Run){ r->verify_id, pos,
                         (uint64_t)d > pos ? (uint64_t)d : pos + 1, false };
        }
    }
    *hole = run.hole;
    *to = run.to;
    return 0;
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
    while (r->file.sparse && !r->no_holes && pos < end) {
        uint64_t to, from, last;
        bool hole;

        if (next_run(r, pos, &hole, &to) < 0) {
            cpr_image_error_errno(&r->file, errp, errno,
                                  "cannot look for holes");
            return -1;
        }
        to = MIN(to, end);
        if (hole) {
            /* [pos, to) is a hole: the pages wholly inside it. */
            from = (pos - start + PAGE - 1) / PAGE;
            last = to == end ? n : (to - start) / PAGE;
            for (uint64_t i = from; i < last;) {
                uint64_t bits = last - i < 64 - i % 64 ? last - i
                                                       : 64 - i % 64;

                holes[i / 64] |= (bits == 64 ? ~0ull
                                             : ((1ull << bits) - 1))
                                 << (i % 64);
                count += (int)bits;
                i += bits;
            }
        }
        pos = to;
    }
    return count;
}

/*
 * The hashes of the pages of block @k into page_xxh3, and the block into
 * @buf: read there unless mapped.  Mapped, the pages before the VM
 * description are hashed in place, and only those from the page it
 * starts in on are copied to @buf and hashed there: the description
 * keep_desc() takes must be the bytes verified, never the mapping's.
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
        uint64_t start = k * CPR_CSUM_BLOCK, in_place = 0;

        if (r->map) {
            /* The whole pages before the description's first byte. */
            in_place = r->rec.stream_len > start ?
                       (r->rec.stream_len - start) / PAGE * PAGE : 0;
            in_place = in_place < len ? in_place : len;
        }
        if (in_place) {
            CprAccess a = { .src = r->payload + start, .len = in_place,
                            .arg = first };

            if (guarded(r, do_hash_pages, &a, errp) < 0) {
                return -1;
            }
        }
        if (in_place == len) {
            return 0;
        }
        if (cpr_reader_read_payload(r, start + in_place, buf + in_place,
                                    len - in_place, errp) < 0) {
            return -1;
        }
        hash_pages(r, buf + in_place, len - in_place,
                   first + in_place / PAGE);
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
        if (cpr_reader_read_payload(r, k * CPR_CSUM_BLOCK + off, buf + off, run,
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
    return cpr_csum_block(h, n);
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
                           &r->file, errp);
    if (ret == 0) {
        *csum = cpr_csum_top(v.blocks, n);
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
        if (cpr_reader_read_payload(r, k * CPR_CSUM_BLOCK, buf, len,
                                    errp) < 0) {
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
 * payload_has_holes -- whether the live payload itself has a hole.  A
 * file the writer made sparse (a new image gets blocks as its stream
 * reaches them) has holes past its payload and in its header area, which
 * say nothing about the payload; one SEEK_HOLE does.
 */
static bool payload_has_holes(const CprReader *r)
{
    uint64_t off = r->rec.payload_off, len = r->rec.payload_len;
    int64_t hole;

    if (!r->file.sparse || !len) {
        return false;
    }
    hole = cpr_image_find_hole(r->file.fd, off, len);
    return hole < 0 || (uint64_t)hole < off + len;
}

/*
 * A payload of MAP_MIN or more, on memory-like media (tmpfs, DAX), is
 * read through a read-only mapping: it is hashed in place, and served
 * with a copy from it, each page hashed again in the caller's buffer
 * (serve), where pread copies through the page cache at half the speed
 * (a restore of 1 GiB with two multifd channels: 311 ms against 416 ms
 * with pread, medians of 24), and a buffer of one's own costs a fault
 * per page in a process that just started.  Every access runs under
 * the fault guard: a truncation is an error, not a SIGBUS.  Pages in a
 * hole are not touched (tmpfs fills a hole on a read fault): they are
 * hashed as zeros (hash_block), and the checksum decides.  On a disk
 * filesystem, and if it cannot be mapped, the payload is read with
 * pread, whose readahead suits a device better than faults.
 */
static void map_payload(CprReader *r, bool holes)
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
    /* One block: its page tables in one call, not a fault per 16 pages;
     * never over a hole, which a read fault on tmpfs fills. */
    if (!holes && len <= CPR_CSUM_BLOCK + (uint64_t)pagesize) {
        (void)madvise(m, (size_t)len, MADV_POPULATE_READ);
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
int cpr_reader_verify(CprReader *r, char **errp)
{
    uint64_t csum = 0;
    bool holes;
    int ret;

    r->verify_id = atomic_fetch_add(&verify_ids, 1) + 1;
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
        r->zero_block = cpr_csum_block(h, CPR_CSUM_PAGES_PER_BLOCK);
    }
    /* A sparse one is read: serving from the mapping would fill holes.
     * Without one (a file the writer made sparse around its payload),
     * no block looks for holes: one punched since reads as zeros, which
     * the checksum refuses.  One block read into memory never looks:
     * pread gives a hole's zeros without filling it, and one block of
     * them is soon read. */
    holes = !(r->rec.payload_len <= CPR_CSUM_BLOCK &&
              (r->whole || r->rec.payload_len < MAP_MIN)) &&
            payload_has_holes(r);
    r->no_holes = !holes;
    if (!r->whole && r->rec.payload_len >= MAP_MIN &&
        (r->rec.payload_len > CPR_CSUM_BLOCK || !holes)) {
        map_payload(r, holes);
    }
    if (!r->map && r->rec.payload_len <= CPR_CSUM_BLOCK) {
        bool all_hole = false;

        /* One block: read once, and served from memory from now on. */
        if (!r->whole) {
            r->whole = malloc(r->rec.payload_len + 1);
        }
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
            csum = cpr_csum_top(&block, r->npages ? 1 : 0);
        }
        ret = 0;
    } else {
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
