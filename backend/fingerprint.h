/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A RAM block's content fingerprint (BINDING.md): the XXH3 of a few
 * pages chosen from a per-save seed, kept per page so that a restore can
 * say how many differ.  Reads never fault: through the fault guard, or
 * with pread().
 */
#ifndef CPR_FINGERPRINT_H
#define CPR_FINGERPRINT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmdesc.h"

/*
 * The pages a fingerprint samples in a block of @size bytes named @name:
 * the first, the last and pseudo-random ones chosen from @seed and
 * @name, distinct and ascending, cpr_vmdesc_nr_samples(@size) of them.
 */
uint32_t cpr_fingerprint_pages(uint64_t seed, const char *name,
                               uint64_t size, uint64_t *index);

/*
 * XXH3-64 (seeded with @seed) of each page @index[i] of the block mapped
 * at [@host, @host + @size), and (if @zero) whether it is all zero.
 * Reads run under the fault guard: -1 if a page is gone (SIGBUS).
 */
int cpr_fingerprint_hash(const void *host, uint64_t size, uint64_t seed,
                         const uint64_t *index, uint32_t n, uint64_t *xxh3,
                         bool *zero);

/*
 * The same, read with pread() from the block's file @fd at @fd_offset
 * (for a file QEMU maps shared, whose mapping shows the file): -1 if a
 * page is past the end of the file or unreadable, -2 if the file cannot
 * be read() at all (device DAX): then read the mapping.
 */
int cpr_fingerprint_hash_fd(int fd, uint64_t fd_offset, uint64_t size,
                            uint64_t seed, const uint64_t *index, uint32_t n,
                            uint64_t *xxh3, bool *zero);

#endif
