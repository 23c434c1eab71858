/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one persistence layer: every mapping, growth, store, flush and drain
 * of an image file goes through these functions, so a test build can swap
 * in a recording implementation that models which bytes are durable at
 * each persist point.
 *
 * Durability contract: bytes stored with cpr_persist_write() are durable
 * only after a cpr_persist_range() covering them has returned 0.
 */
#ifndef CPR_PERSIST_H
#define CPR_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct CprPersist CprPersist;

/*
 * Grow the open, writable file @fd to at least @min_len bytes and map all
 * of it.  The caller keeps owning the fd (and its lock).  @path is only
 * used in messages.
 */
CprPersist *cpr_persist_map(int fd, const char *path, uint64_t min_len,
                            char **errp);

/* Grow the file (never shrinks) to at least @len bytes and remap it. */
int cpr_persist_grow(CprPersist *p, uint64_t len, char **errp);

void cpr_persist_unmap(CprPersist *p);

uint64_t cpr_persist_size(const CprPersist *p);
bool cpr_persist_is_pmem(const CprPersist *p);

/*
 * Map [off, off + len) writable now, so that the stores that follow take
 * no page faults (on tmpfs or DAX a fault per 4 KiB page is most of the
 * cost of a small save).  Best effort: only speed depends on it.
 */
void cpr_persist_prefault(CprPersist *p, uint64_t off, uint64_t len);

/* Read access to the mapping; invalidated by cpr_persist_grow(). */
const uint8_t *cpr_persist_view(const CprPersist *p, uint64_t off);

/* Store @len bytes at @off (must be inside the file); not yet durable. */
void cpr_persist_write(CprPersist *p, uint64_t off, const void *src,
                       size_t len);
void cpr_persist_zero(CprPersist *p, uint64_t off, uint64_t len);

/* Make every earlier store in [off, off + len) durable. */
int cpr_persist_range(CprPersist *p, uint64_t off, uint64_t len,
                      char **errp);

#endif
