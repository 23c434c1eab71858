/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fingerprint.h"
#include "fault-guard.h"
#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

uint32_t cpr_fingerprint_pages(uint64_t seed, const char *name,
                               uint64_t size, uint64_t *index)
{
    uint64_t pages = cpr_vmdesc_pages(size);
    uint32_t n = cpr_vmdesc_nr_samples(size), got = 2;
    uint64_t x = XXH3_64bits_withSeed(name, strlen(name), seed);

    if (pages <= CPR_VMDESC_MAX_SAMPLES) {
        for (uint32_t i = 0; i < n; i++) {
            index[i] = i;
        }
        return n;
    }
    index[0] = 0;
    index[1] = pages - 1;
    /* Distinct pages in [1, pages - 2]: there are more than 62 of them. */
    while (got < n) {
        uint64_t k = 1 + splitmix64(&x) % (pages - 2);
        uint32_t i;

        for (i = 0; i < got && index[i] != k; i++) {
        }
        if (i == got) {
            index[got++] = k;
        }
    }
    qsort(index, n, sizeof(*index), cmp_u64);
    return n;
}

/* The length of page @index of a block of @size bytes. */
static size_t page_len(uint64_t size, uint64_t index)
{
    uint64_t off = index * CPR_VMDESC_PAGE;

    return size - off < CPR_VMDESC_PAGE ? (size_t)(size - off) :
           CPR_VMDESC_PAGE;
}

typedef struct Hashing {
    const uint8_t *host;
    uint64_t size, seed;
    const uint64_t *index;
    uint32_t n;
    uint64_t *xxh3;
    bool *zero;
} Hashing;

static bool all_zero(const uint8_t *p, size_t len)
{
    static const uint8_t zeros[256];

    while (len >= sizeof(zeros)) {
        if (memcmp(p, zeros, sizeof(zeros))) {
            return false;
        }
        p += sizeof(zeros);
        len -= sizeof(zeros);
    }
    return memcmp(p, zeros, len) == 0;
}

static void do_hash(void *opaque)
{
    Hashing *h = opaque;

    for (uint32_t i = 0; i < h->n; i++) {
        uint64_t off = h->index[i] * CPR_VMDESC_PAGE;
        size_t len = page_len(h->size, h->index[i]);

        h->xxh3[i] = XXH3_64bits_withSeed(h->host + off, len, h->seed);
        if (h->zero) {
            h->zero[i] = all_zero(h->host + off, len);
        }
    }
}

int cpr_fingerprint_hash(const void *host, uint64_t size, uint64_t seed,
                         const uint64_t *index, uint32_t n, uint64_t *xxh3,
                         bool *zero)
{
    Hashing h = { host, size, seed, index, n, xxh3, zero };

    for (uint32_t i = 0; i < n; i++) {
        if (index[i] >= cpr_vmdesc_pages(size)) {
            return -1;
        }
    }
    if (n == 0) {
        return 0;
    }
    return cpr_fault_guard(host, (size_t)size, do_hash, &h);
}

int cpr_fingerprint_hash_fd(int fd, uint64_t fd_offset, uint64_t size,
                            uint64_t seed, const uint64_t *index, uint32_t n,
                            uint64_t *xxh3, bool *zero)
{
    uint8_t page[CPR_VMDESC_PAGE];

    for (uint32_t i = 0; i < n; i++) {
        size_t len, done = 0;

        if (index[i] >= cpr_vmdesc_pages(size)) {
            return -1;
        }
        len = page_len(size, index[i]);
        while (done < len) {
            ssize_t got = pread(fd, page + done, len - done,
                                (off_t)(fd_offset + index[i] *
                                        CPR_VMDESC_PAGE + done));

            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                /* Not a file read() serves (device DAX): map instead. */
                return errno == EINVAL || errno == ENODEV ||
                       errno == ESPIPE || errno == EISDIR ? -2 : -1;
            }
            if (got == 0) {
                return -1;      /* past the end of the file: truncated */
            }
            done += (size_t)got;
        }
        xxh3[i] = XXH3_64bits_withSeed(page, len, seed);
        if (zero) {
            zero[i] = all_zero(page, len);
        }
    }
    return 0;
}
