/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * XXH3 for payload checksums.  On x86 the dispatch header routes the
 * XXH3_64bits calls to hash-dispatch.c, which runs an AVX2 build when
 * the CPU has it, about twice the speed of the baseline SSE2 build: the
 * checksum is half the CPU cost of a save.
 */
#ifndef CPR_HASH_H
#define CPR_HASH_H

#include <xxhash.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#endif

#endif
