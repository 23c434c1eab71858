/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sparse copies (issue 15, item 4): "cp --sparse=always" or "rsync -S"
 * of a good image leaves holes wherever its payload is zeros.  Holes are
 * not damage: a hole reads as zeros and the payload checksum decides.
 * So the copy loads, holes punched exactly over zero pages load, a save
 * into a sparse copy works, and a hole punched over non-zero payload is
 * refused by the checksum.  A sparse claim (a record whose payload is a
 * 1 TiB hole) is refused by the checksum too, at the cost of the data
 * the file holds: no hole is read or allocated; and a save into it does
 * not take it for a live image to keep off.  Each runs on both media.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "hostile-util.h"
#include "unit-util.h"

#define KiB 1024ull

/*
 * A stream with runs of zero pages at every alignment that matters: a
 * whole checksum block (1 MiB) of zeros, runs of pages inside a block,
 * one zero page, zeros ending the stream.  @zeros gets the runs (stream
 * offset, length), terminated by a 0 length.
 */
typedef struct Run {
    uint64_t off, len;
} Run;

static const Run zero_runs[] = {
    { 1 * MiB, 1 * MiB },               /* block 1, whole */
    { 2 * MiB + 64 * KiB, 192 * KiB },  /* inside block 2 */
    { 3 * MiB + 4 * KiB, 4 * KiB },     /* one page */
    { 4 * MiB, 2 * MiB - 4 * KiB },     /* blocks 4-5, less a page */
    { 0, 0 },
};

#define STREAM (7 * MiB - 1234)

static uint8_t *stream(void)
{
    uint8_t *s = tu_pattern(STREAM, 15);

    for (const Run *z = zero_runs; z->len; z++) {
        memset(s + z->off, 0, z->len);
    }
    return s;
}

/* Payload offset of the newest record of @path. */
static uint64_t payload_off(const char *path)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE);
    int fd = open(path, O_RDONLY);
    CprSlots s;
    uint64_t off;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, CPR_HEADER_SIZE, 0), ==, CPR_HEADER_SIZE);
    close(fd);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, >=, 0);
    g_assert_cmpuint(s.rec[s.newest].version, >=, 3);
    off = s.rec[s.newest].payload_off;
    g_free(hdr);
    return off;
}

/* Bytes of the file's holes in [from, to). */
static uint64_t hole_bytes(const char *path, uint64_t from, uint64_t to)
{
    int fd = open(path, O_RDONLY);
    uint64_t pos = from, holes = 0;

    g_assert_cmpint(fd, >=, 0);
    while (pos < to) {
        off_t h = lseek(fd, (off_t)pos, SEEK_HOLE), d;

        g_assert_cmpint(h, >=, 0);
        if ((uint64_t)h >= to) {
            break;
        }
        d = lseek(fd, h, SEEK_DATA);
        d = d < 0 || (uint64_t)d > to ? (off_t)to : d;
        holes += (uint64_t)(d - h);
        pos = (uint64_t)d;
    }
    close(fd);
    return holes;
}

static void punch(const char *path, uint64_t off, uint64_t len)
{
    int fd = open(path, O_RDWR);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              (off_t)off, (off_t)len), ==, 0);
    close(fd);
}

static void copy_sparse(const char *from, const char *to)
{
    char *cmd = g_strdup_printf("cp --sparse=always '%s' '%s'", from, to);

    g_assert_cmpint(system(cmd), ==, 0);
    g_free(cmd);
}

/* cp --sparse=always: the copy has holes in its payload, and loads; and
 * a save into it works. */
static void test_cp_sparse(void)
{
    char *path = tu_path("image"), *copy = tu_path("copy");
    uint8_t *s = stream(), *next = tu_pattern(3 * MiB, 16);
    uint64_t off, holes;

    tu_save(path, s, STREAM);
    copy_sparse(path, copy);
    off = payload_off(copy);
    holes = hole_bytes(copy, off, off + STREAM);
    g_test_message("cp --sparse=always: %llu bytes of the payload are holes",
                   (unsigned long long)holes);
    g_assert_cmpuint(holes, >=, 3 * MiB);
    tu_assert_loads(copy, s, STREAM);
    /* The copy is the live image of the next save, which keeps off its
     * payload (a crash mid-save must leave it loadable). */
    tu_save(copy, next, 3 * MiB);
    g_assert_true(payload_off(copy) >= off + STREAM ||
                  payload_off(copy) + 3 * MiB <= off);
    tu_assert_loads(copy, next, 3 * MiB);
    g_free(s);
    g_free(next);
    g_free(path);
    g_free(copy);
}

/* A sparse copy of a one-block payload loads through its mapping on
 * tmpfs without a hole of it allocated (no populating over holes). */
static void test_cp_sparse_one_block(void)
{
    char *path = tu_path("small"), *copy = tu_path("small-copy");
    size_t len = 512 * 1024;
    uint8_t *s = tu_pattern(len, 17);
    struct stat st0, st1;
    uint64_t off;

    memset(s + 64 * 1024, 0, 384 * 1024);
    tu_save(path, s, len);
    copy_sparse(path, copy);
    off = payload_off(copy);
    g_assert_cmpuint(hole_bytes(copy, off, off + len), >=, 256 * 1024);
    g_assert_cmpint(stat(copy, &st0), ==, 0);
    tu_assert_loads(copy, s, len);
    g_assert_cmpint(stat(copy, &st1), ==, 0);
    g_test_message("file blocks %lld -> %lld", (long long)st0.st_blocks,
                   (long long)st1.st_blocks);
    g_assert_cmpint(st1.st_blocks, ==, st0.st_blocks);
    g_free(s);
    g_free(path);
    g_free(copy);
}

/* Holes punched exactly over the zero pages: loads.  Then one over a
 * page of data: the checksum refuses it. */
static void test_punched(void)
{
    char *path = tu_path("punched");
    uint8_t *s = stream();
    uint64_t off;

    tu_save(path, s, STREAM);
    off = payload_off(path);
    for (const Run *z = zero_runs; z->len; z++) {
        punch(path, off + z->off, z->len);
    }
    g_assert_cmpuint(hole_bytes(path, off, off + STREAM), ==,
                     (1 * MiB) + (192 * KiB) + (4 * KiB) + (2 * MiB - 4 * KiB));
    tu_assert_loads(path, s, STREAM);
    /* A page of data next to the holes of block 2. */
    punch(path, off + 2 * MiB + 4 * KiB, 4 * KiB);
    tu_assert_load_refused(path, "checksum mismatch");
    g_free(s);
    g_free(path);
}

/* One page of data punched into a block that has no other hole, and a
 * whole block of data: refused either way. */
static void test_punched_data(void)
{
    char *path = tu_path("punched-data");
    uint8_t *s = stream();
    uint64_t off;

    tu_save(path, s, STREAM);
    off = payload_off(path);
    punch(path, off + 6 * MiB, 4 * KiB);
    tu_assert_load_refused(path, "checksum mismatch");
    tu_save(path, s, STREAM);
    off = payload_off(path);
    punch(path, off, 1 * MiB);
    tu_assert_load_refused(path, "checksum mismatch");
    g_free(s);
    g_free(path);
}

/*
 * A saved image whose newest record is made to claim a payload to the
 * end of a 1 TiB sparse file (format 3, re-signed).  It must be refused
 * by the checksum in well under a second of work per GiB of data, with
 * memory for the data only: holes are neither read nor allocated.
 */
static void make_claim(const char *path, uint64_t size)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE), rec_buf[CPR_REC_SIZE];
    int fd = open(path, O_RDWR);
    CprRecord rec;
    CprSlots s;
    uint64_t desc;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, CPR_HEADER_SIZE, 0), ==, CPR_HEADER_SIZE);
    cpr_slots_decode(hdr, &s);
    rec = s.rec[s.newest];
    g_assert_cmpuint(rec.version, ==, 3);
    desc = rec.payload_len - rec.stream_len;
    g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    rec.payload_len = size - rec.payload_off;
    rec.stream_len = rec.payload_len - desc;
    cpr_record_encode(&rec, rec_buf);
    g_assert_cmpint(pwrite(fd, rec_buf, sizeof(rec_buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec.generation))), ==,
                    sizeof(rec_buf));
    close(fd);
    g_free(hdr);
}

static int claim_child(void *opaque)
{
    const char *dir = opaque;
    char *path = g_build_filename(dir, "claim.cpr", NULL);
    uint8_t *s = stream();
    struct rusage ru;
    struct stat st0, st1;
    double t0, dt;

    /* On tmpfs, a private one that a reader allocating the holes
     * would fill (an error), not the machine's memory. */
    if (hu_on_tmpfs(dir) && !hu_private_tmpfs(dir, "size=64m")) {
        return 77;
    }
    tu_save(path, s, STREAM);
    make_claim(path, 1ull << 40);
    g_assert_cmpint(stat(path, &st0), ==, 0);
    t0 = hu_now();
    tu_assert_load_refused(path, "checksum mismatch");
    dt = hu_now() - t0;
    g_assert_cmpint(getrusage(RUSAGE_SELF, &ru), ==, 0);
    g_assert_cmpint(stat(path, &st1), ==, 0);
    printf("# a 1 TiB sparse claim (%s): refused in %.3f s, max RSS %ld "
           "KiB, file blocks %lld -> %lld\n", dir, dt, ru.ru_maxrss,
           (long long)st0.st_blocks, (long long)st1.st_blocks);
    /* Linear in the claim, at about 1 µs per MiB: bounds far above. */
    g_assert_cmpfloat(dt, <, 30.0);
    g_assert_cmpint(ru.ru_maxrss, <, 200 * 1024);
    /* Not a hole allocated (a read fault fills a tmpfs hole). */
    g_assert_cmpint(st1.st_blocks, ==, st0.st_blocks);
    /* A save into it: the claim is no live image to keep off (placed
     * above it, the save would allocate 1.25 TiB), so the save goes at
     * 2 MiB, in the room the file has. */
    tu_save(path, s, STREAM);
    g_assert_cmpuint(payload_off(path), ==, CPR_PAYLOAD_AREA);
    tu_assert_loads(path, s, STREAM);
    unlink(path);
    g_free(s);
    g_free(path);
    return 0;
}

static void test_sparse_claim(void)
{
    char *dir = tu_path("claim");
    int status;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_quiesce();
    status = hu_run_child(claim_child, dir);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        g_test_skip("cannot mount a private tmpfs");
    } else {
        hu_assert_exit_ok(status, "a 1 TiB sparse claim");
    }
    g_free(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sparse/cp-sparse", test_cp_sparse);
    g_test_add_func("/sparse/cp-sparse-one-block", test_cp_sparse_one_block);
    g_test_add_func("/sparse/punched-over-zeros", test_punched);
    g_test_add_func("/sparse/punched-over-data", test_punched_data);
    g_test_add_func("/sparse/claim-1t", test_sparse_claim);
    return g_test_run();
}
