/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Work split over threads: the writer settling a large payload's pages at
 * commit, the reader verifying a large payload's blocks.  Each thread
 * (the caller's among them) takes the next unit until none is left or
 * one failed: the first failure's message wins.
 */
#ifndef CPR_PARALLEL_H
#define CPR_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

/* Unit @i, with @scratch (@scratch_len bytes, this thread's own). */
struct CprImage;

typedef int (*CprParallelFn)(void *ctx, uint64_t i, void *scratch,
                             char **errp);

/*
 * @fn over units [0, @n) on up to @want threads, at most as many as there
 * are CPUs (and 8); fewer if threads cannot start.  Returns 0, or -1 with
 * the first failure's message in *errp (naming the image @img if scratch
 * memory ran out).
 */
int cpr_parallel_for(uint64_t n, uint64_t want, size_t scratch_len,
                     CprParallelFn fn, void *ctx, const struct CprImage *img,
                     char **errp);

#endif
