/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Save -> restore through the ABI, on the media named by the env. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "binding.h"
#include "format.h"
#include "metadata.h"
#include "image-file.h"
#include "persist.h"
#include "placement.h"
#include "populate.h"
#include "reader.h"
#include "unit-util.h"
#include "writer.h"

#include <xxhash.h>

#define MiB (1u << 20)

static gboolean expect_pmem(void)
{
    return g_strcmp0(g_getenv("CPR_EXPECT_PMEM"), "1") == 0;
}

static void test_persist_layer(void)
{
    char *path = tu_path("persist");
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CprImage img = { 0 };   /* the test keeps the descriptor and path */
    char *err = NULL;
    CprPersist *p;
    struct stat st;
    uint64_t h;

    g_assert_cmpint(fd, >=, 0);
    img.fd = fd;
    img.path = path;
    p = cpr_persist_map(&img, 1 * MiB, &err);
    g_assert_null(err);
    g_assert_cmpint(cpr_persist_is_pmem(p), ==, expect_pmem());
    g_assert_cmpuint(cpr_persist_size(p), ==, 1 * MiB);
    g_assert_cmpint(cpr_persist_store(p, 4096, "hello", 5, &err), ==, 0);
    g_assert_cmpint(cpr_persist_range(p, 4096, 5, &err), ==, 0);
    g_assert_cmpint(cpr_persist_grow(p, 3 * MiB, 3 * MiB, &err), ==, 0);
    g_assert_cmpint(cpr_persist_grow(p, 2 * MiB, 2 * MiB, &err), ==, 0);
    g_assert_cmpuint(cpr_persist_size(p), ==, 3 * MiB);
    g_assert_cmpint(cpr_persist_hash(p, 4096, 5, &h, &err), ==, 0);
    g_assert_cmphex(h, ==, XXH3_64bits("hello", 5));
    g_assert_cmpint(cpr_persist_zero(p, 4097, 2, &err), ==, 0);
    g_assert_cmpint(cpr_persist_move(p, 8192, 4096, 5, &err), ==, 0);
    g_assert_cmpint(cpr_persist_hash(p, 8192, 5, &h, &err), ==, 0);
    g_assert_cmphex(h, ==, XXH3_64bits("h\0\0lo", 5));
    {
        bool z;

        /* a run of zeros, around the stored bytes, at odd offsets */
        g_assert_cmpint(cpr_persist_is_zero(p, 8197, 3 * MiB - 8197, &z,
                                            &err), ==, 0);
        g_assert_true(z);
        g_assert_cmpint(cpr_persist_is_zero(p, 8191, 2, &z, &err), ==, 0);
        g_assert_false(z);
        g_assert_cmpint(cpr_persist_is_zero(p, 8196, 1, &z, &err), ==, 0);
        g_assert_false(z);
        g_assert_cmpint(cpr_persist_is_zero(p, 8193, 2, &z, &err), ==, 0);
        g_assert_true(z);
        g_assert_cmpint(cpr_persist_is_zero(p, 3 * MiB - 1, 2, &z, &err),
                        ==, -1);
        g_free(err);
        err = NULL;
    }
    g_assert_cmpint(cpr_persist_range(p, 0, 3 * MiB, &err), ==, 0);
    g_assert_null(err);
    cpr_persist_unmap(p);
    /* Blocks are allocated, not a sparse hole. */
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 3 * MiB);
    g_assert_cmpint(st.st_blocks * 512, >=, 3 * MiB);
    close(fd);
    g_free(path);
}

static void round_trip(size_t len)
{
    char *name = g_strdup_printf("rt-%zu", len);
    char *path = tu_path(name);
    uint8_t *buf = tu_pattern(len, (uint32_t)len);

    tu_save(path, buf, len);
    tu_assert_loads(path, buf, len);
    g_free(buf);
    g_free(path);
    g_free(name);
}

static void test_empty(void) { round_trip(0); }
static void test_one_byte(void) { round_trip(1); }
static void test_typical(void) { round_trip(300 * 1024 + 17); }
static void test_large(void) { round_trip(64 * MiB + 12345); }

static void test_positional(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("positional");
    uint8_t *buf = tu_pattern(3 * MiB, 5), *got = g_malloc0(3 * MiB);
    uint8_t *want = g_malloc0(6 * MiB);
    QemuTransportOut *o;
    QemuTransportIn *in;
    char *err = NULL;
    struct iovec iov[2];

    o = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(o);
    /* A header by append, then pages by offset, out of order, with a gap
     * [1 MiB + 100, 2 MiB) that must read back as zeros. */
    iov[0] = (struct iovec){ buf, 100 };
    g_assert_cmpint(ops->out_writev(o, iov, 1, &err), ==, 100);
    iov[0] = (struct iovec){ buf + 2 * MiB, MiB / 2 };
    iov[1] = (struct iovec){ buf + 2 * MiB + MiB / 2, MiB / 2 };
    g_assert_cmpint(ops->out_pwritev(o, iov, 2, 2 * MiB, &err), ==, MiB);
    iov[0] = (struct iovec){ buf + MiB, 100 };
    g_assert_cmpint(ops->out_pwritev(o, iov, 1, MiB, &err), ==, 100);
    /* The append position did not move with pwritev. */
    iov[0] = (struct iovec){ buf + 100, MiB - 100 };
    g_assert_cmpint(ops->out_writev(o, iov, 1, &err), ==, MiB - 100);
    g_assert_cmpint(ops->out_commit(o, tu_vm(), &err), ==, 0);
    g_assert_null(err);
    ops->out_close(o);

    memcpy(want, buf, MiB + 100);
    memcpy(want + 2 * MiB, buf + 2 * MiB, MiB);
    tu_assert_loads(path, want, 3 * MiB);

    in = ops->in_open(path, tu_vm(), &err);
    g_assert_nonnull(in);
    iov[0] = (struct iovec){ got, 1000 };
    iov[1] = (struct iovec){ got + 1000, 5000 };
    g_assert_cmpint(ops->in_preadv(in, iov, 2, 2 * MiB, &err), ==, 6000);
    g_assert_cmpmem(got, 6000, buf + 2 * MiB, 6000);
    iov[0] = (struct iovec){ got, 3 * MiB };
    g_assert_cmpint(ops->in_preadv(in, iov, 1, 3 * MiB - 10, &err), ==, 10);
    g_assert_cmpint(ops->in_preadv(in, iov, 1, 3 * MiB, &err), ==, 0);
    g_assert_cmpint(ops->in_preadv(in, iov, 1, 1ll << 62, &err), ==, 0);
    g_assert_cmpint(ops->in_preadv(in, iov, 1, -1, &err), ==, -1);
    g_assert_nonnull(err);
    free(err);
    ops->in_close(in);
    g_free(buf);
    g_free(got);
    g_free(want);
    g_free(path);
}

/*
 * The previous release wrote version-2 records, whose checksum is the
 * XXH3 of the whole payload: what it saved must still load (a host
 * update installs this transport between the save and the restore),
 * served from memory (one block) or page by page (more).
 */
static void version_2(size_t len)
{
    char *path = tu_path("v2");
    uint8_t *buf = tu_pattern(len, 41), *payload, rbuf[CPR_REC_SIZE];
    char *err = NULL;
    CprReader *r;
    CprRecord rec;
    int fd;

    tu_save(path, buf, len);
    r = cpr_reader_open(path, &err);
    g_assert_nonnull(r);
    rec = *cpr_reader_record(r);
    cpr_reader_close(r);
    g_assert_cmpuint(rec.version, ==, 3);
    fd = open(path, O_RDWR);
    payload = g_malloc(rec.payload_len);
    g_assert_cmpint(pread(fd, payload, rec.payload_len,
                          (off_t)rec.payload_off), ==, rec.payload_len);
    rec.version = 2;
    rec.payload_xxh3 = XXH3_64bits(payload, rec.payload_len);
    cpr_record_encode(&rec, rbuf);
    g_assert_cmpint(pwrite(fd, rbuf, sizeof(rbuf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec.generation))), ==,
                    sizeof(rbuf));
    close(fd);
    tu_assert_loads(path, buf, len);
    /* ... and a flipped payload bit is still refused */
    tu_flip_bit(path, rec.payload_off + len / 2, 3);
    tu_assert_load_refused(path, "payload checksum mismatch");
    unlink(path);
    g_free(payload);
    g_free(buf);
    g_free(path);
}

static void test_version_2_small(void) { version_2(300 * 1024 + 5); }
static void test_version_2_large(void) { version_2(5 * MiB + 4096 * 3 + 77); }

/*
 * Gaps left by positional writes read back as zeros even where the
 * image held other bytes before (the save before the last one's
 * payload): this save's bytes go where save 1's went.
 */
static void test_gaps_over_stale(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("stale-gaps");
    uint8_t *old = g_malloc(6 * MiB), *buf = tu_pattern(6 * MiB, 9);
    uint8_t *want = g_malloc0(6 * MiB);
    QemuTransportOut *o;
    char *err = NULL;
    struct iovec iov;

    memset(old, 0xfe, 6 * MiB);
    tu_save(path, old, 6 * MiB);
    memset(old, 0xfd, 6 * MiB);
    tu_save(path, old, 6 * MiB);
    tu_quiesce();
    o = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(o);
    g_assert_cmpuint(cpr_writer_payload_offset((CprWriter *)o), ==, 2 * MiB);
    /* a header; whole pages with whole-page gaps; pieces with gaps
     * inside pages; the last byte */
    iov = (struct iovec){ buf, 3000 };
    g_assert_cmpint(ops->out_writev(o, &iov, 1, &err), ==, 3000);
    memcpy(want, buf, 3000);
    for (uint64_t off = MiB; off < 3 * MiB; off += 3 * 4096) {
        iov = (struct iovec){ buf + off, 4096 };
        g_assert_cmpint(ops->out_pwritev(o, &iov, 1, (int64_t)off, &err), ==,
                        4096);
        memcpy(want + off, buf + off, 4096);
    }
    for (uint64_t off = 3 * MiB + 100; off < 5 * MiB; off += 5000) {
        iov = (struct iovec){ buf + off, 1000 };
        g_assert_cmpint(ops->out_pwritev(o, &iov, 1, (int64_t)off, &err), ==,
                        1000);
        memcpy(want + off, buf + off, 1000);
    }
    iov = (struct iovec){ buf + 6 * MiB - 1, 1 };
    g_assert_cmpint(ops->out_pwritev(o, &iov, 1, 6 * MiB - 1, &err), ==, 1);
    want[6 * MiB - 1] = buf[6 * MiB - 1];
    g_assert_cmpint(ops->out_commit(o, tu_vm(), &err), ==, 0);
    g_assert_null(err);
    ops->out_close(o);
    tu_assert_loads(path, want, 6 * MiB);
    g_free(old);
    g_free(buf);
    g_free(want);
    g_free(path);
}

/* One committed (or aborted) writer-level save of @len bytes of @byte. */
static void save_fill(const char *path, int byte, size_t len, bool commit)
{
    char *err = NULL;
    CprWriter *w = cpr_writer_open_vm(path,
                                      &(CprHost){ "test", NULL, NULL },
                                      NULL, &err);
    uint8_t *buf = g_malloc(len);

    g_assert_nonnull(w);
    memset(buf, byte, len);
    g_assert_cmpint(cpr_writer_append(w, buf, len, &err), ==, 0);
    if (commit) {
        g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    } else {
        cpr_writer_abort(w);
    }
    cpr_writer_close(w);
    g_free(buf);
}

/* Stream bytes [@off, @off + 100) of @path's image are all zero. */
static void assert_zero_gap(const char *path, uint64_t off)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(path, &err);
    uint8_t got[100], zero[100] = { 0 };

    g_assert_null(err);
    g_assert_cmpint(cpr_reader_pread(r, off, got, sizeof(got), &err), ==,
                    sizeof(got));
    g_assert_cmpmem(got, sizeof(got), zero, sizeof(zero));
    cpr_reader_close(r);
}

/*
 * A page that a store wrote in part, then moved by a relocation: its
 * zeroed rest moves with it, so a gap in it is zero over the stale bytes
 * of an aborted save at the new place.
 */
static void test_gap_after_relocation(void)
{
    char *path = tu_path("gap-reloc");
    uint8_t a[100], b[4096], c[100];
    char *err = NULL;
    CprWriter *w;

    save_fill(path, 0x11, 8 * MiB, true);
    save_fill(path, 0x22, 8 * MiB, true);
    save_fill(path, 0x33, 13 * MiB, false);    /* above: stale bytes */
    memset(a, 0x44, sizeof(a));
    memset(b, 0x55, sizeof(b));
    memset(c, 0x66, sizeof(c));
    w = cpr_writer_open_vm(path, &(CprHost){ "test", NULL, NULL }, NULL, &err);
    g_assert_nonnull(w);
    g_assert_cmpint(cpr_writer_pwrite(w, 0, a, sizeof(a), &err), ==, 0);
    g_assert_cmpint(cpr_writer_pwrite(w, 12 * MiB + 512 * 1024, b, sizeof(b),
                                      &err), ==, 0);
    g_assert_cmpuint(cpr_writer_payload_offset(w), >, 2 * MiB);  /* moved */
    g_assert_cmpint(cpr_writer_pwrite(w, 200, c, sizeof(c), &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    cpr_writer_close(w);
    assert_zero_gap(path, 100);
    unlink(path);
    g_free(path);
}

/*
 * The room ends where a hole punched into the file begins, mid-page: the
 * first store into that page still zeroes all of it.
 */
static void test_gap_at_hole(void)
{
    char *path = tu_path("gap-hole");
    size_t big = 9 * MiB + 100;
    uint8_t *a = g_malloc(big), c[100];
    char *err = NULL;
    CprWriter *w;
    int fd;

    save_fill(path, 0x11, 12 * MiB, true);
    save_fill(path, 0x22, 12 * MiB, true);
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              15 * MiB, MiB), ==, 0);
    close(fd);
    memset(a, 0x44, big);
    memset(c, 0x66, sizeof(c));
    w = cpr_writer_open_vm(path, &(CprHost){ "test", NULL, NULL }, NULL, &err);
    g_assert_nonnull(w);
    g_assert_cmpint(cpr_writer_pwrite(w, 0, a, big, &err), ==, 0);
    g_assert_cmpint(cpr_writer_pwrite(w, 9 * MiB + 200, c, sizeof(c), &err),
                    ==, 0);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    cpr_writer_close(w);
    assert_zero_gap(path, 9 * MiB + 100);
    unlink(path);
    g_free(a);
    g_free(path);
}

/* Three saves into one file: generations 1, 2, 3 in slots 1, 0, 1. */
static void test_generations(void)
{
    char *path = tu_path("gens");
    struct utsname u;
    CprReader *r;
    char *err = NULL;
    int slot;

    g_assert_cmpint(uname(&u), ==, 0);
    for (uint32_t g = 1; g <= 3; g++) {
        size_t len = g * 100 * 1024;
        uint8_t *buf = tu_pattern(len, g);
        uint64_t before = cpr_realtime_ns();

        tu_save(path, buf, len);
        tu_assert_loads(path, buf, len);
        g_assert_cmpuint(tu_newest_generation(path, &slot), ==, g);
        g_assert_cmpint(slot, ==, g % 2);
        r = cpr_reader_open(path, &err);
        g_assert_nonnull(r);
        g_assert_cmpstr(cpr_reader_record(r)->qemu_version, ==,
                        TU_QEMU_VERSION);
        g_assert_cmpstr(cpr_reader_record(r)->kernel_release, ==, u.release);
        g_assert_cmpuint(cpr_reader_record(r)->ctime_ns, >=, before);
        g_assert_cmpuint(cpr_reader_record(r)->cmdline_fp, !=, 0);
        cpr_reader_close(r);
        g_free(buf);
    }
    g_free(path);
}

static void assert_aborts_keep(const char *path, const uint8_t *live,
                               size_t live_len, const uint8_t *next,
                               size_t next_len)
{
    const size_t at[] = { 0, 1, MiB, 3 * MiB + 5, 9 * MiB, (size_t)-2 };

    for (size_t i = 0; i < G_N_ELEMENTS(at); i++) {
        tu_save_aborted(path, next, next_len, at[i]);
        tu_assert_loads(path, live, live_len);
    }
}

/*
 * Small after big, big after small, a save that starts above a high live
 * payload because a stream like it would not fit below, and one that
 * outgrows the room below (relocation): every abort, at every stream
 * size, leaves the previous generation loadable byte for byte.
 */
static void test_placement_and_abort(void)
{
    char *path = tu_path("placement");
    uint8_t *small = tu_pattern(MiB, 1), *big = tu_pattern(10 * MiB, 2);
    uint8_t *small2 = tu_pattern(MiB, 3), *big2 = tu_pattern(12 * MiB, 4);
    uint8_t *twice;
    char *err = NULL;
    CprWriter *w;

    tu_save(path, small, MiB);                  /* at 2 MiB */
    assert_aborts_keep(path, small, MiB, big, 10 * MiB);
    tu_save(path, big, 10 * MiB);               /* above it, at 6 MiB */
    assert_aborts_keep(path, big, 10 * MiB, small2, MiB);
    /* 4 MiB below would not hold a stream like the live one: above. */
    tu_save(path, small2, MiB);                 /* at 20 MiB */
    assert_aborts_keep(path, small2, MiB, big2, 12 * MiB);
    tu_save(path, big2, 12 * MiB);              /* below it, at 2 MiB */
    assert_aborts_keep(path, big2, 12 * MiB, big, 10 * MiB);
    /* Above big2's payload (12 MiB and its VM description, at 2 MiB):
     * align_up(14 MiB + 3 MiB + 1 MiB + a few bytes, 2 MiB). */
    w = tu_writer_open(path);
    g_assert_nonnull(w);
    g_assert_cmpuint(cpr_writer_payload_offset(w), ==, 20 * MiB);
    g_assert_cmpint(cpr_writer_append(w, big, 10 * MiB, &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    cpr_writer_close(w);
    tu_assert_loads(path, big, 10 * MiB);
    /* Live at 20 MiB leaves 18 MiB below: 24 MiB must relocate, to
     * align_up(30 MiB + 2.5 MiB + 1 MiB + a few bytes, 2 MiB). */
    w = tu_writer_open(path);
    g_assert_nonnull(w);
    g_assert_cmpuint(cpr_writer_payload_offset(w), ==, CPR_PAYLOAD_AREA);
    g_assert_cmpint(cpr_writer_append(w, big2, 12 * MiB, &err), ==, 0);
    g_assert_cmpuint(cpr_writer_payload_offset(w), ==, CPR_PAYLOAD_AREA);
    g_assert_cmpint(cpr_writer_append(w, big2, 12 * MiB, &err), ==, 0);
    g_assert_cmpuint(cpr_writer_payload_offset(w), ==, 34 * MiB);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    g_assert_null(err);
    cpr_writer_close(w);
    twice = g_malloc(24 * MiB);
    memcpy(twice, big2, 12 * MiB);
    memcpy(twice + 12 * MiB, big2, 12 * MiB);
    tu_assert_loads(path, twice, 24 * MiB);
    /* Relocation triggered by a positional write. */
    w = tu_writer_open(path);
    g_assert_cmpuint(cpr_writer_payload_offset(w), ==, CPR_PAYLOAD_AREA);
    g_assert_cmpint(cpr_writer_append(w, small, MiB, &err), ==, 0);
    g_assert_cmpint(cpr_writer_pwrite(w, 40 * MiB, small2, MiB, &err), ==, 0);
    g_assert_cmpuint(cpr_writer_payload_offset(w), >, CPR_PAYLOAD_AREA);
    cpr_writer_abort(w);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, -1);
    g_assert_nonnull(err);
    free(err);
    cpr_writer_close(w);
    tu_assert_loads(path, twice, 24 * MiB);
    g_free(twice);
    g_free(small);
    g_free(big);
    g_free(small2);
    g_free(big2);
    g_free(path);
}

/* Close without commit or abort is an abort too. */
static void test_close_without_commit(void)
{
    char *path = tu_path("close");
    uint8_t *a = tu_pattern(4096, 1), *b = tu_pattern(8192, 2);
    char *err = NULL;
    CprWriter *w;

    tu_save(path, a, 4096);
    w = tu_writer_open(path);
    g_assert_cmpint(cpr_writer_append(w, b, 8192, &err), ==, 0);
    cpr_writer_close(w);
    tu_assert_loads(path, a, 4096);
    g_free(a);
    g_free(b);
    g_free(path);
}

/*
 * A restore makes room for the next save in the background: the file
 * grows to hold it, and no byte of the image changes.
 */
static void test_room_after_restore(void)
{
    char *path = tu_path("room");
    uint8_t *a = tu_pattern(20 * MiB, 6);
    uint64_t want = cpr_place_new(CPR_PAYLOAD_AREA, 20 * MiB).base +
                    25 * MiB;
    CprPopulatorStats ps;
    struct stat st = { 0 };

    tu_save(path, a, 20 * MiB);
    tu_assert_loads(path, a, 20 * MiB);     /* in_close starts it */
    for (int i = 0; i < 1000; i++) {
        g_assert_cmpint(stat(path, &st), ==, 0);
        if ((uint64_t)st.st_size >= want) {
            break;
        }
        g_usleep(10000);
    }
    g_assert_cmpuint(st.st_size, >=, want);
    tu_assert_loads(path, a, 20 * MiB);
    tu_save(path, a + 1, 20 * MiB - 1);     /* out_open stops it */
    cpr_populator_stats(&ps);
    g_assert_cmpuint(ps.files_running, ==, 0);
    tu_assert_loads(path, a + 1, 20 * MiB - 1);
    g_free(a);
    g_free(path);
}

/* A committed save unlocks at once: QEMU closes (unmaps) it later. */
static void test_loadable_before_close(void)
{
    char *path = tu_path("before-close");
    uint8_t *a = tu_pattern(4096, 5);
    char *err = NULL;
    CprWriter *w = tu_writer_open(path);
    CprReader *r;

    g_assert_cmpint(cpr_writer_append(w, a, 4096, &err), ==, 0);
    tu_assert_load_refused(path, "in progress");
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    r = cpr_reader_open(path, &err);
    g_assert_null(err);
    g_assert_nonnull(r);
    cpr_reader_close(r);
    cpr_writer_close(w);
    g_free(a);
    g_free(path);
}

/*
 * Streams over 64 MiB get their page tables populated by a thread: it
 * must stop before a growing stream remaps the file, and on abort.
 */
static void test_background_populate(void)
{
    char *path = tu_path("populate");
    uint8_t *a = tu_pattern(80 * MiB, 1), *b = tu_pattern(100 * MiB, 2);
    uint8_t *c = tu_pattern(200 * MiB, 3);
    CprPopulatorStats s0, s1, s2, s3;

    tu_save(path, a, 80 * MiB);
    cpr_populator_stats(&s0);
    tu_save(path, b, 100 * MiB);    /* expects 100 MiB: the thread runs */
    cpr_populator_stats(&s1);
    tu_assert_loads(path, b, 100 * MiB);
    tu_save(path, c, 200 * MiB);    /* expects 125 MiB, grows mid-stream */
    cpr_populator_stats(&s2);
    tu_assert_loads(path, c, 200 * MiB);
    tu_save_aborted(path, a, 80 * MiB, 5 * MiB);    /* thread still busy */
    cpr_populator_stats(&s3);
    tu_assert_loads(path, c, 200 * MiB);
    g_test_message("populated %" PRIu64 " / %" PRIu64 " / %" PRIu64
                   " MiB; threads %" PRIu64 "/%" PRIu64 "/%" PRIu64
                   "; stops %" PRIu64 "; remaps %" PRIu64 "/%" PRIu64
                   "/%" PRIu64,
                   (s1.populated - s0.populated) >> 20,
                   (s2.populated - s1.populated) >> 20,
                   (s3.populated - s2.populated) >> 20,
                   s1.threads - s0.threads, s2.threads - s1.threads,
                   s3.threads - s2.threads, s3.stops - s0.stops,
                   s1.remaps - s0.remaps, s2.remaps - s1.remaps,
                   s3.remaps - s2.remaps);
    /* The save of b expects 100 MiB and populates all of it (at open or
     * on the thread, whichever the clock allows), and no more than a
     * stream's step beyond. */
    g_assert_cmpuint(s1.populated - s0.populated, >=, 100 * MiB);
    /* c grows mid-stream: the file is remapped, and each remap found the
     * thread stopped (the writer stops it first). */
    g_assert_cmpuint(s2.remaps - s1.remaps, >=, 1);
    g_assert_cmpuint(s3.remaps_running, ==, 0);
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(path);
}

/* "cpr-pmem create --size": room made ahead, saves kept. */
static void test_populate_size(void)
{
    char *path = tu_path("prealloc");
    uint8_t *a = tu_pattern(70 * MiB, 4);
    CprPopulatorStats s0, s1;
    char *err = NULL;
    struct stat st;
    CprWriter *w;

    w = tu_writer_open(path);
    g_assert_cmpint(cpr_writer_populate_size(w, 96 * MiB, &err), ==, 0);
    cpr_writer_close(w);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 96 * MiB);
    tu_assert_load_refused(path, "no committed image");
    cpr_populator_stats(&s0);
    tu_save(path, a, 70 * MiB);     /* a first save pre-maps all 94 MiB */
    cpr_populator_stats(&s1);
    g_assert_cmpuint(s1.last_goal, ==, 96 * MiB);
    g_assert_cmpuint(s1.populated - s0.populated, >=, 94 * MiB);
    w = tu_writer_open(path);
    g_assert_cmpint(cpr_writer_populate_size(w, 160 * MiB, &err), ==, 0);
    cpr_writer_close(w);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 160 * MiB);
    tu_assert_loads(path, a, 70 * MiB);
    g_assert_null(err);
    g_free(a);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_message("media: %s in %s", expect_pmem() ? "pmem" : "msync",
                   tu_dir());
    g_test_add_func("/persist/layer", test_persist_layer);
    g_test_add_func("/roundtrip/empty", test_empty);
    g_test_add_func("/roundtrip/one-byte", test_one_byte);
    g_test_add_func("/roundtrip/300k", test_typical);
    g_test_add_func("/roundtrip/64m-odd-iovecs", test_large);
    g_test_add_func("/roundtrip/positional", test_positional);
    g_test_add_func("/roundtrip/generations", test_generations);
    g_test_add_func("/roundtrip/version-2-small", test_version_2_small);
    g_test_add_func("/roundtrip/version-2-large", test_version_2_large);
    g_test_add_func("/roundtrip/gaps-over-stale-bytes", test_gaps_over_stale);
    g_test_add_func("/roundtrip/gap-after-relocation",
                    test_gap_after_relocation);
    g_test_add_func("/roundtrip/gap-at-hole", test_gap_at_hole);
    g_test_add_func("/roundtrip/placement-and-abort",
                    test_placement_and_abort);
    g_test_add_func("/roundtrip/close-without-commit",
                    test_close_without_commit);
    g_test_add_func("/roundtrip/background-populate",
                    test_background_populate);
    g_test_add_func("/roundtrip/populate-size", test_populate_size);
    g_test_add_func("/roundtrip/room-after-restore", test_room_after_restore);
    g_test_add_func("/roundtrip/loadable-before-close",
                    test_loadable_before_close);
    return g_test_run();
}
