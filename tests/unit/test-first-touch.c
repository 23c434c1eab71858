/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The first touch of a save's growth (issue 18): on tmpfs and on a disk
 * filesystem the file grows without blocks and the stores there go by
 * pwrite() (persist.h, space.c); the commit gives the gaps blocks and
 * cuts the growth's slack.  pwrite and pwritev are interposed here to
 * fail with ENOSPC once armed: the save fails with an error naming the
 * file, the space it took goes back, and the last good image still
 * loads.
 */
#include "binding.h"
#include "unit-util.h"
#include "persist.h"
#include "reader.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define MiB (1ull << 20)
#define PAGE_SIZE_4K 4096

/* > 0: pwrite() calls left before they fail with ENOSPC. */
static int fail_after = 0;
static unsigned failed;

/* Whether this call is the one armed to fail. */
static bool due(void)
{
    if (fail_after > 0 && --fail_after == 0) {
        failed++;
        errno = ENOSPC;
        return true;
    }
    return false;
}

/* pwrite, pwritev -- the real ones (the system calls), unless due. */
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    return due() ? -1 : syscall(SYS_pwrite64, fd, buf, len, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return due() ? -1 : syscall(SYS_pwritev, fd, iov, iovcnt, (long)off,
                                (long)((uint64_t)off >> 32));
}

/* data_below -- the bytes of data (written) in [0, @end) */
static uint64_t data_below(const char *path, uint64_t end)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t n = 0;
    off_t at = 0, hole;

    g_assert_cmpint(fd, >=, 0);
    while ((uint64_t)at < end && (at = lseek(fd, at, SEEK_DATA)) >= 0 &&
           (uint64_t)at < end) {
        hole = lseek(fd, at, SEEK_HOLE);
        g_assert_cmpint(hole, >, at);
        n += MIN((uint64_t)hole, end) - (uint64_t)at;
        at = hole;
    }
    close(fd);
    return n;
}

/* lseek -- the real one, counting the searches for holes and data */
static bool counting;
static unsigned seeks;

off_t lseek(int fd, off_t off, int whence)
{
    if (counting && (whence == SEEK_DATA || whence == SEEK_HOLE)) {
        seeks++;
    }
    return syscall(SYS_lseek, fd, off, whence);
}

static struct stat stat_of(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st;
}

/*
 * save_around_gap -- @len bytes of @buf, zeros in [@gap, @gap + @gap_len),
 * saved into a new image at @path as mapped-ram leaves out zero pages:
 * positional stores around the gap, the far end first (as mapped-ram
 * writes a block's header past its pages), the gap never written.
 * Returns the payload's offset in the file.
 */
static uint64_t save_around_gap(const char *path, uint8_t *buf, size_t len,
                                size_t gap, size_t gap_len)
{
    char *err = NULL;
    struct iovec iov;
    CprWriter *w;
    uint64_t base;

    memset(buf + gap, 0, gap_len);
    unlink(path);
    w = tu_writer_open(path);
    base = cpr_writer_payload_offset(w);
    iov = (struct iovec){ buf + gap + gap_len, len - gap - gap_len };
    g_assert_cmpint(cpr_writer_pwritev(w, gap + gap_len, &iov, 1, &err), ==,
                    (int64_t)iov.iov_len);
    iov = (struct iovec){ buf, gap };
    g_assert_cmpint(cpr_writer_pwritev(w, 0, &iov, 1, &err), ==, (int64_t)gap);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    g_assert_null(err);
    cpr_writer_close(w);
    return base;
}

/*
 * A stream far past a new image's first 8 MiB, with a gap the stores
 * leave (as mapped-ram leaves out zero pages): the growth went by
 * pwrite(), the file ends at the payload's 2 MiB unit and has no hole
 * (the gap and the slack have blocks), and the image loads.
 */
static void test_written_by_pwrite(void)
{
    g_autofree char *path = tu_path("first-touch");
    const size_t len = 40 * MiB, gap = 20 * MiB, gap_len = 3 * MiB;
    g_autofree uint8_t *buf = tu_pattern(len, 7);
    CprPersistStats s0, s1;
    struct stat st;
    uint64_t base, end;

    cpr_persist_stats(&s0);
    base = save_around_gap(path, buf, len, gap, gap_len);
    cpr_persist_stats(&s1);
    g_test_message("written %" G_GUINT64_FORMAT ", extended %" G_GUINT64_FORMAT
                   ", filled %" G_GUINT64_FORMAT ", trimmed %" G_GUINT64_FORMAT,
                   s1.written - s0.written, s1.extended - s0.extended,
                   s1.filled - s0.filled, s1.trimmed - s0.trimmed);
    /* What lies past the image's first 8 MiB went by pwrite(). */
    g_assert_cmpuint(s1.written - s0.written, >=,
                     base + len - gap_len - 8 * MiB);
    g_assert_cmpuint(s1.extended - s0.extended, >, 0);
    /* The gap got blocks without being written. */
    g_assert_cmpuint(s1.filled - s0.filled, >=, gap_len);
    st = stat_of(path);
    end = (base + len + 2 * MiB - 1) / (2 * MiB) * (2 * MiB);
    /* The slack cut: at most the VM description's unit past the stream. */
    g_assert_cmpuint((uint64_t)st.st_size, <=, end + 2 * MiB);
    /* No hole from the payload on: a new image's header area has some,
     * and tmpfs's SEEK_HOLE counts blocks given but not written. */
    g_assert_cmpuint((uint64_t)st.st_blocks * 512, >=,
                     data_below(path, base) + (uint64_t)st.st_size - base);
    tu_assert_loads(path, buf, len);
    unlink(path);
}

/*
 * A restore of an image whose payload has a long run of filled gaps
 * (blocks given, never written: holes to SEEK_DATA on tmpfs and ext4) in
 * a file with holes elsewhere (a new image's header area): the search
 * for holes asks once per run, not once per 1 MiB block (on tmpfs each
 * ask walks the run page by page: a 1 GiB restore took seconds).
 */
static void test_restore_seeks(void)
{
    g_autofree char *path = tu_path("first-touch-seeks");
    const size_t len = 48 * MiB, gap = 8 * MiB, gap_len = 32 * MiB;
    g_autofree uint8_t *buf = tu_pattern(len, 9);

    save_around_gap(path, buf, len, gap, gap_len);
    seeks = 0;
    counting = true;
    tu_assert_loads(path, buf, len);
    counting = false;
    g_test_message("%u searches for holes or data over %u blocks", seeks,
                   (unsigned)(len / MiB));
    /* The file has holes, so it was searched; a few runs, a few threads. */
    g_assert_cmpuint(seeks, >, 0);
    g_assert_cmpuint(seeks, <, 16);
    unlink(path);
}

/*
 * A new image is sparse around its payload (its header area, the slack
 * past the stream): a restore of a payload without holes searches the
 * file once at most, to decide how to read it, and not at all for a
 * payload read into memory in one go (pread gives a hole's zeros, which
 * the checksum judges): before, a search per run of every block besides.
 */
static void test_restore_no_holes(void)
{
    static const size_t lens[] = { 40 << 10, 3 * MiB };
    static const unsigned most[] = { 0, 1 };

    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        g_autofree char *path = tu_path("first-touch-no-holes");
        g_autofree uint8_t *buf = tu_pattern(lens[i], 11);
        struct stat st;

        unlink(path);
        tu_save(path, buf, lens[i]);
        st = stat_of(path);
        g_assert_cmpuint((uint64_t)st.st_blocks * 512, <,
                         (uint64_t)st.st_size);     /* sparse */
        seeks = 0;
        counting = true;
        tu_assert_loads(path, buf, lens[i]);
        counting = false;
        g_test_message("%zu bytes: %u searches for holes or data", lens[i],
                       seeks);
        g_assert_cmpuint(seeks, <=, most[i]);
        unlink(path);
    }
}

/*
 * ENOSPC from a pwrite() of the growth: the store fails naming the file
 * and the reason, the commit refuses, the abort gives the growth back,
 * and the image committed before loads as it was.
 */
static void test_enospc(void)
{
    g_autofree char *path = tu_path("first-touch-enospc");
    g_autofree char *name = NULL;
    const size_t good = 1 * MiB, len = 48 * MiB;
    g_autofree uint8_t *a = tu_pattern(good, 1);
    g_autofree uint8_t *b = tu_pattern(len, 2);
    char *err = NULL;
    CprWriter *w;
    struct stat before, after;

    unlink(path);
    tu_save(path, a, good);
    before = stat_of(path);
    name = g_strdup_printf("%s: ", path);
    w = tu_writer_open(path);
    fail_after = 3;
    g_assert_cmpint(cpr_writer_append(w, b, len, &err), <, 0);
    fail_after = 0;
    g_assert_cmpuint(failed, ==, 1);
    g_test_message("%s", err);
    if (!g_str_has_prefix(err, name) || !strstr(err, "No space left")) {
        g_error("\"%s\" does not name %s and ENOSPC", err, path);
    }
    free(err);
    err = NULL;
    g_assert_cmpint(cpr_writer_commit(w, &err), <, 0);
    free(err);
    cpr_writer_abort(w);
    cpr_writer_close(w);
    after = stat_of(path);
    g_assert_cmpint(after.st_size, ==, before.st_size);
    tu_assert_loads(path, a, good);
    unlink(path);
}

/*
 * I5, I6: another process cuts the file inside the bare zone during the
 * save, and a later pwrite() grows it again to its full size: the pages
 * written before the cut are holes now.  The commit refuses (the file
 * has fewer blocks than bytes), and the image committed before loads.
 */
static void test_cut_by_another(void)
{
    g_autofree char *path = tu_path("first-touch-cut");
    g_autofree char *name = NULL;
    const size_t good = 1 * MiB, len = 32 * MiB, far = 62 * MiB;
    g_autofree uint8_t *a = tu_pattern(good, 3);
    g_autofree uint8_t *b = tu_pattern(len, 4);
    char *err = NULL;
    struct iovec iov = { b, PAGE_SIZE_4K };
    CprWriter *w;
    uint64_t base;
    int fd;

    unlink(path);
    tu_save(path, a, good);
    name = g_strdup_printf("%s: ", path);
    w = tu_writer_open(path);
    base = cpr_writer_payload_offset(w);
    /* The growth (to the far page's 2 MiB unit), then its lower part. */
    g_assert_cmpint(cpr_writer_pwritev(w, far, &iov, 1, &err), ==,
                    PAGE_SIZE_4K);
    iov = (struct iovec){ b, len };
    g_assert_cmpint(cpr_writer_pwritev(w, 8 * MiB, &iov, 1, &err), ==,
                    (int64_t)len);
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)(base + 20 * MiB)), ==, 0);
    close(fd);
    /* The file's last page: as long as the writer made it, again. */
    iov = (struct iovec){ b, PAGE_SIZE_4K };
    g_assert_cmpint(cpr_writer_pwritev(w, 64 * MiB - PAGE_SIZE_4K, &iov, 1,
                                       &err), ==, PAGE_SIZE_4K);
    g_assert_cmpint(cpr_writer_commit(w, &err), <, 0);
    g_test_message("%s", err);
    if (!g_str_has_prefix(err, name) || !strstr(err, "lost blocks")) {
        g_error("\"%s\" does not name %s and the lost blocks", err, path);
    }
    free(err);
    cpr_writer_abort(w);
    cpr_writer_close(w);
    tu_assert_loads(path, a, good);
    unlink(path);
}

int main(int argc, char **argv)
{
    tu_test_init(&argc, &argv);
    g_test_add_func("/first-touch/written-by-pwrite", test_written_by_pwrite);
    g_test_add_func("/first-touch/enospc", test_enospc);
    g_test_add_func("/first-touch/restore-seeks", test_restore_seeks);
    g_test_add_func("/first-touch/restore-no-holes", test_restore_no_holes);
    g_test_add_func("/first-touch/cut-by-another", test_cut_by_another);
    return g_test_run();
}
