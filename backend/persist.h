/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one persistence layer: every mapping, allocation, store, flush and
 * drain of an image file goes through these functions, so a test build
 * can swap in a model that records which bytes are durable at each
 * persist point and can fail any flush (tests/crash/persist-sim.c).
 *
 * Words: "allocate" gives file ranges their blocks, "populate" fills
 * page tables, "store" puts bytes into the mapping (not yet durable),
 * "persist" makes stored bytes durable.
 *
 * Durability contract: bytes stored with cpr_persist_store() are durable
 * only after a cpr_persist_range() covering them has returned 0.
 *
 * Every access to the mapping runs under the fault guard: if another
 * process truncates the file or punches a hole in it, an access fails
 * with an error instead of a SIGBUS.
 */
#ifndef CPR_PERSIST_H
#define CPR_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct CprPersist CprPersist;
struct CprImage;

/*
 * Grow the open, writable image @img to at least @min_len bytes and map
 * all of it.  The caller keeps owning the image (its descriptor, lock
 * and path), which must outlive the mapping: messages name it, and its
 * media class says how to populate.
 */
CprPersist *cpr_persist_map(struct CprImage *img, uint64_t min_len,
                            char **errp);

/*
 * Grow the file to @len bytes, or if there is no room for that, to @need
 * (<= @len) rounded up to a page, and remap.  Refuses a file that became
 * shorter than its mapping (another process truncated it).  On failure
 * the file keeps its size: a failed grow leaves no blocks behind.
 */
int cpr_persist_grow(CprPersist *p, uint64_t len, uint64_t need,
                     char **errp);

/* Give every hole in [off, off + len) its blocks now, so that a store
 * there cannot fail for want of space (that would be a SIGBUS). */
int cpr_persist_allocate(CprPersist *p, uint64_t off, uint64_t len,
                         char **errp);

/*
 * Whether first-touched ranges are better written with pwrite() than
 * stored through the mapping: the mapping is a view of the page cache
 * (tmpfs, a disk filesystem), not a MAP_SYNC DAX mapping.  Chosen once
 * per mapping.
 */
bool cpr_persist_writes_file(const CprPersist *p);

/*
 * Grow the file to @len bytes without giving the new range blocks, and
 * remap: the caller writes into it only with cpr_persist_write() (which
 * allocates what it writes, and fails with ENOSPC rather than a SIGBUS)
 * and gives what it leaves out blocks with cpr_persist_fill() before any
 * other access.  Refuses a file another process cut short.
 */
int cpr_persist_extend(CprPersist *p, uint64_t len, char **errp);

/* Write @len bytes at @off (inside the file) with pwrite(); not yet
 * durable: cpr_persist_range() covers them as it covers stores. */
int cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp);

/* The same for @iovcnt elements, in one pwritev() where it can. */
struct iovec;
int cpr_persist_writev(CprPersist *p, uint64_t off, const struct iovec *iov,
                       int iovcnt, char **errp);

/* Give [off, off + len) blocks (posix_fallocate), whether or not it has
 * some already: one call, for a range known to be mostly holes. */
int cpr_persist_fill(CprPersist *p, uint64_t off, uint64_t len, char **errp);

/* Cut the file back to @len bytes (an end cpr_persist_extend() left past
 * what was written); the mapping stays until unmapped. */
int cpr_persist_trim(CprPersist *p, uint64_t len, char **errp);

/* For tests and attribution: what every mapping of this process did. */
typedef struct CprPersistStats {
    uint64_t written;           /* bytes put with cpr_persist_write() */
    uint64_t extended;          /* bytes grown without blocks */
    uint64_t filled;            /* bytes given blocks by cpr_persist_fill() */
    uint64_t trimmed;           /* bytes cut back by cpr_persist_trim() */
} CprPersistStats;

void cpr_persist_stats(CprPersistStats *s);

void cpr_persist_unmap(CprPersist *p);

uint64_t cpr_persist_size(const CprPersist *p);
bool cpr_persist_is_pmem(const CprPersist *p);

/*
 * Map [off, off + len) writable now, so that the stores that follow take
 * no page faults (on tmpfs or DAX a fault per 4 KiB page is most of the
 * cost of a small save).  Best effort: only speed depends on it, and it
 * never faults.  Returns how many bytes of the range the mapping holds
 * (what lies past its end is left).
 */
uint64_t cpr_persist_populate(CprPersist *p, uint64_t off, uint64_t len);

/* Store @len bytes at @off (inside the file); not yet durable. */
int cpr_persist_store(CprPersist *p, uint64_t off, const void *src,
                      size_t len, char **errp);
int cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len, char **errp);
/* Store the bytes at @src_off to @dst_off (ranges must not overlap). */
int cpr_persist_move(CprPersist *p, uint64_t dst_off, uint64_t src_off,
                     uint64_t len, char **errp);

/* XXH3 of the stored bytes [off, off + len). */
int cpr_persist_hash(CprPersist *p, uint64_t off, uint64_t len,
                     uint64_t *xxh3, char **errp);

/* Whether the stored bytes [off, off + len) are all zero. */
int cpr_persist_is_zero(CprPersist *p, uint64_t off, uint64_t len,
                        bool *zero, char **errp);

/*
 * Threads: every function but map, grow, extend, trim, unmap and
 * allocate may run on several threads at once, on disjoint ranges (reads
 * of one range may overlap), while none of those runs: the caller
 * excludes them.
 */

/* Make every earlier store in [off, off + len) durable. */
int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp);

#endif
