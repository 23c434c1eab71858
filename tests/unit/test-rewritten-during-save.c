/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writer invariant I6 (backend/writer.c): a file another process rewrote
 * in place between the stream and out_commit is not committed.  Each
 * case leaves the file as long as the save needs it, so neither the
 * growth's size check nor the fault guard fails the save first: only
 * the commit's own check can.  Each case asserts that out_commit returns
 * -1 with "changed during the save", and that what loads afterwards is
 * exactly what the other process left (never the uncommitted stream):
 * the commit stored nothing into the rewritten file.
 *
 * Without the check, "copy a larger image over it" is reported committed
 * and then refused ("payload checksum mismatch"), and "a record slot
 * rewritten" is reported committed while another generation loads.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "hostile-util.h"
#include "unit-util.h"

#define KiB 1024u

/* The previous image's stream, and the new one's (shorter than what a
 * copied image holds where it lies, so that any store the commit made
 * would land inside the copy's live payload). */
#define OLD_LEN (64 * KiB + 5)
#define NEW_LEN (96 * KiB + 13)

typedef struct Case {
    const char *name;
    /* Prepare the other file(s) in @dir; the image @a holds one save. */
    void (*rewrite)(const char *a, const char *other);
    /* Set after rewrite(): what must load, and its generation. */
    uint8_t *expect;
    size_t expect_len;
    uint64_t expect_gen;
} Case;

/* The previous image's and other images' streams, per seed. */
static uint8_t *stream(uint32_t seed, size_t len)
{
    return tu_pattern(len, seed);
}

/* cp @from @to: opened O_WRONLY|O_TRUNC, same inode, rewritten whole. */
static void copy_in_place(const char *from, const char *to)
{
    gchar *buf = NULL;
    gsize len = 0;
    struct stat before, after;
    int fd;

    g_assert_true(g_file_get_contents(from, &buf, &len, NULL));
    g_assert_cmpint(stat(to, &before), ==, 0);
    fd = open(to, O_WRONLY | O_TRUNC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, buf, len), ==, (ssize_t)len);
    g_assert_cmpint(fsync(fd), ==, 0);
    close(fd);
    g_assert_cmpint(stat(to, &after), ==, 0);
    g_assert_cmpuint(after.st_ino, ==, before.st_ino);
    g_free(buf);
}

/* Image @path with generations of @n streams (seeds @seed, @seed + 1...);
 * the last one @last_len bytes, the others OLD_LEN. */
static void make_image(const char *path, int n, uint32_t seed,
                       size_t last_len)
{
    unlink(path);
    for (int i = 0; i < n; i++) {
        size_t len = i == n - 1 ? last_len : OLD_LEN;
        uint8_t *b = stream(seed + (uint32_t)i, len);

        tu_save(path, b, len);
        g_free(b);
    }
}

static void read_header(const char *path, uint8_t *hdr)
{
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, CPR_HEADER_SIZE, 0), ==, CPR_HEADER_SIZE);
    close(fd);
}

static void pwrite_at(const char *path, const void *buf, size_t len,
                      uint64_t off)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, len, (off_t)off), ==, (ssize_t)len);
    close(fd);
}

/*
 * cp B A, B larger: B's second, 10 MiB save grows it past the 8 MiB the
 * image starts with, and its live payload lies where A's save streams
 * (both placed above a first payload of OLD_LEN).
 */
static Case copy_larger;

static void rewrite_copy_larger(const char *a, const char *b)
{
    copy_larger.expect_len = 10 * MiB + 3;
    make_image(b, 2, 40, copy_larger.expect_len);
    g_assert_cmpuint(hu_file_size(b), >, hu_file_size(a));
    copy_in_place(b, a);
    copy_larger.expect = stream(41, copy_larger.expect_len);
    copy_larger.expect_gen = 2;
}

/* cp B A, the same size: the size check cannot tell. */
static Case copy_same_size;

static void rewrite_copy_same_size(const char *a, const char *b)
{
    copy_same_size.expect_len = 256 * KiB + 1;
    make_image(b, 2, 50, copy_same_size.expect_len);
    g_assert_cmpuint(hu_file_size(b), ==, hu_file_size(a));
    copy_in_place(b, a);
    copy_same_size.expect = stream(51, copy_same_size.expect_len);
    copy_same_size.expect_gen = 2;
}

/* Another image's superblock (another UUID) over A's; the records stay. */
static Case superblock;

static void rewrite_superblock(const char *a, const char *b)
{
    uint8_t *hdr = g_malloc(CPR_HEADER_SIZE);

    make_image(b, 1, 60, OLD_LEN);
    read_header(b, hdr);
    pwrite_at(a, hdr + CPR_SB_OFFSET, CPR_SB_SIZE, CPR_SB_OFFSET);
    g_free(hdr);
    superblock.expect = stream(30, OLD_LEN);
    superblock.expect_len = OLD_LEN;
    superblock.expect_gen = 1;
}

/* The live record rewritten as a later generation of the same payload:
 * a commit of generation 2 would be reported and generation 7 load. */
static Case record_slot;

static void rewrite_record_slot(const char *a, const char *other)
{
    uint8_t *hdr = g_malloc(CPR_HEADER_SIZE);
    uint8_t rec[CPR_REC_SIZE];
    CprSlots s;
    CprRecord r;

    (void)other;
    read_header(a, hdr);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, >=, 0);
    r = s.rec[s.newest];
    r.generation = 7;
    cpr_record_encode(&r, rec);
    pwrite_at(a, rec, sizeof(rec), CPR_SLOT_OFFSET(s.newest));
    g_free(hdr);
    record_slot.expect = stream(30, OLD_LEN);
    record_slot.expect_len = OLD_LEN;
    record_slot.expect_gen = 7;
}

/* Read what @path loads into a new buffer; NULL and *err if refused. */
static uint8_t *load(const char *path, size_t cap, size_t *len, char **err)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *buf = g_malloc(cap + 1);
    QemuTransportIn *t = ops->in_open(path, tu_vm(), err);
    ssize_t n;

    if (!t) {
        g_free(buf);
        return NULL;
    }
    n = hu_read_all(t, buf, cap + 1, NULL, err);
    ops->in_close(t);
    tu_quiesce();
    if (n < 0) {
        g_free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

static void check(Case *c)
{
    const QemuTransportOps *ops = tu_ops();
    char *a = tu_path(c->name);
    char *other = g_strconcat(a, ".other", NULL);
    uint8_t *old = stream(30, OLD_LEN);
    uint8_t *new = stream(31, NEW_LEN);
    struct iovec iov[2] = { { new, 4093 }, { new + 4093, NEW_LEN - 4093 } };
    QemuTransportOut *t;
    uint8_t *got;
    char *err = NULL;
    size_t got_len = 0;
    int ret;

    make_image(a, 1, 30, OLD_LEN);
    g_assert_cmpuint(hu_newest_generation(a), ==, 1);
    t = ops->out_open(a, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->out_writev(t, iov, 2, &err), ==, NEW_LEN);
    g_assert_null(err);

    c->rewrite(a, other);

    ret = ops->out_commit(t, tu_vm(), &err);
    if (ret == 0) {
        /* Say what the committed save amounts to, then fail. */
        ops->out_close(t);
        got = load(a, 16 * MiB, &got_len, &err);
        g_error("%s: out_commit returned 0 on a file another process "
                "rewrote during the save; then generation %llu %s", a,
                (unsigned long long)hu_newest_generation(a), !got ? err :
                got_len == NEW_LEN && !memcmp(got, new, NEW_LEN) ?
                "loads the new stream" : "loads another stream");
    }
    hu_assert_error(a, err, "changed during the save");
    err = NULL;
    ops->out_abort(t);
    ops->out_close(t);

    /* What the other process left loads, whole, with its generation. */
    g_assert_cmpuint(hu_newest_generation(a), ==, c->expect_gen);
    got = load(a, 16 * MiB, &got_len, &err);
    if (!got) {
        g_error("%s no longer loads after the refused commit: %s", a, err);
    }
    g_assert_cmpuint(got_len, ==, c->expect_len);
    g_assert_true(memcmp(got, c->expect, c->expect_len) == 0);
    g_assert_false(got_len == NEW_LEN && !memcmp(got, new, NEW_LEN));

    g_free(got);
    g_free(c->expect);
    g_free(old);
    g_free(new);
    g_free(other);
    g_free(a);
}

static void test_copy_larger(void)
{
    check(&copy_larger);
}

static void test_copy_same_size(void)
{
    check(&copy_same_size);
}

static void test_superblock(void)
{
    check(&superblock);
}

static void test_record_slot(void)
{
    check(&record_slot);
}

int main(int argc, char **argv)
{
    tu_test_init(&argc, &argv);
    copy_larger = (Case){ "copy-larger", rewrite_copy_larger, NULL, 0, 0 };
    copy_same_size = (Case){ "copy-same-size", rewrite_copy_same_size,
                             NULL, 0, 0 };
    superblock = (Case){ "superblock", rewrite_superblock, NULL, 0, 0 };
    record_slot = (Case){ "record-slot", rewrite_record_slot, NULL, 0, 0 };
    /* Each in its own process: a save reported committed that cannot
     * load may crash what follows; the other cases still run. */
    tu_add_isolated("/rewritten-during-save/copy-larger", test_copy_larger);
    tu_add_isolated("/rewritten-during-save/copy-same-size",
                    test_copy_same_size);
    tu_add_isolated("/rewritten-during-save/superblock", test_superblock);
    tu_add_isolated("/rewritten-during-save/record-slot", test_record_slot);
    return g_test_run();
}
