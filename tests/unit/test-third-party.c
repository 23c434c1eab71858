/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Third parties (issue 8, items 3 and 4): another process renames,
 * truncates, rewrites or punches the image while a save or a restore
 * uses it.  The transport must end in a clean error (never a SIGBUS,
 * never bytes it did not verify, never a commit of a damaged save) and
 * must never touch a file that is not the image it verified.  The risky
 * part runs in a forked child whose exit status is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile-util.h"
#include "reader.h"
#include "unit-util.h"

static gboolean file_is(const char *path, const void *buf, size_t len)
{
    char *got = NULL;
    gsize got_len = 0;
    gboolean same;

    g_assert_true(g_file_get_contents(path, &got, &got_len, NULL));
    same = got_len == len && memcmp(got, buf, len) == 0;
    g_free(got);
    return same;
}

static void truncate_path(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    close(fd);
}

/* Restore @path (in_open, read all, in_close), replacing the path with
 * @other (by a symlink or a rename) before in_close. */
static void restore_then_replace(const char *path, const uint8_t *a,
                                 size_t len, const char *other,
                                 gboolean by_symlink)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(len + 1);
    QemuTransportIn *t;
    char *err = NULL;

    t = ops->in_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(hu_read_all(t, got, len + 1, NULL, &err), ==, len);
    g_assert_true(memcmp(got, a, len) == 0);
    if (by_symlink) {
        g_assert_cmpint(unlink(path), ==, 0);
        g_assert_cmpint(symlink(other, path), ==, 0);
    } else {
        g_assert_cmpint(rename(other, path), ==, 0);
    }
    ops->in_close(t);
    g_free(got);
}

/* Poll (5 s at most) until @image reaches @want bytes or @other changes. */
static gboolean wait_for_room(const char *image, uint64_t want,
                              const char *other, const void *buf,
                              size_t len)
{
    double t0 = hu_now();

    while (hu_now() - t0 < 5.0 && hu_file_size(image) < want &&
           file_is(other, buf, len)) {
        g_usleep(5000);
    }
    tu_quiesce();       /* joins the thread */
    g_test_message("after %.3f s: image %llu bytes, other file %llu bytes",
                   hu_now() - t0, (unsigned long long)hu_file_size(image),
                   (unsigned long long)hu_file_size(other));
    return hu_file_size(image) >= want;
}

/*
 * Item 3: after a restore, a thread makes room in the image for the next
 * save.  The old one reopened the image by name, without a lock, and so
 * grew whatever file the path named by then.  Replace the path (by a
 * rename over it, or by a symlink) before in_close: the other file must
 * stay as it was, and the image (reached through a hard link made
 * beforehand) must get its room, proving the thread ran, on the right
 * file.
 *
 * The room-making is retried (a few restores) because of a backend race
 * (see test_room_after_every_restore); it proves only that the thread
 * can run on the right file, and it never touches the other one.
 */
static void check_room_on_verified_file(gboolean by_symlink)
{
    static const char precious[] = "someone else's file\n";
    char *path = tu_path(by_symlink ? "room-symlinked" : "room-renamed");
    char *hard = g_strconcat(path, ".hardlink", NULL);
    char *other = g_strconcat(path, ".other", NULL);
    /* Where the other file's bytes can be read afterwards. */
    const char *other_now = by_symlink ? other : path;
    uint8_t *a = tu_pattern(4 * MiB, 11);
    /* Next save: above the restored payload (2 MiB + 4 MiB), aligned:
     * at 8 MiB, room for 4 MiB + a quarter. */
    const uint64_t want = 8 * MiB + 5 * MiB;
    gboolean grown = FALSE;

    for (int attempt = 0; attempt < 5 && !grown; attempt++) {
        unlink(path);
        unlink(hard);
        tu_save(path, a, 4 * MiB);
        g_assert_cmpuint(hu_file_size(path), <, want);
        g_assert_cmpint(link(path, hard), ==, 0);
        tu_write_file(other, precious, sizeof(precious));
        restore_then_replace(path, a, 4 * MiB, other, by_symlink);
        grown = wait_for_room(hard, want, other_now, precious,
                              sizeof(precious));
        g_assert_true(file_is(other_now, precious, sizeof(precious)));
        if (!grown) {
            g_test_message("attempt %d: no room made (backend race)",
                           attempt + 1);
        }
    }
    g_assert_true(grown);
    tu_assert_loads(hard, a, 4 * MiB);
    tu_quiesce();
    g_free(a);
    g_free(other);
    g_free(hard);
    g_free(path);
}

static void test_room_after_rename(void)
{
    check_room_on_verified_file(FALSE);
}

static void test_room_after_symlink(void)
{
    check_room_on_verified_file(TRUE);
}

/*
 * Every restore makes room for the next save: the room thread's lock must
 * not lose against the restore's own, still held when it starts.
 */
static void test_room_after_every_restore(void)
{
    char *path = tu_path("room-every");
    uint8_t *a = tu_pattern(4 * MiB, 19);
    const uint64_t want = 8 * MiB + 5 * MiB;
    const int rounds = 40;
    int skipped = 0;

    for (int i = 0; i < rounds; i++) {
        unlink(path);
        tu_save(path, a, 4 * MiB);
        tu_assert_loads(path, a, 4 * MiB);  /* in_close starts the thread */
        tu_quiesce();                       /* joins it: it grew, or not */
        if (hu_file_size(path) < want) {
            skipped++;
        }
    }
    g_test_message("%d of %d restores made no room for the next save",
                   skipped, rounds);
    g_assert_cmpint(skipped, ==, 0);
    g_free(a);
    g_free(path);
}

/*
 * A restore (or "cpr-pmem check") right after a restore must not be
 * refused: the room-making (a posix_fallocate of 1.25 times the payload)
 * is no save.
 */
static void test_restore_during_room_making(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("restore-twice");
    uint8_t *a = tu_pattern(32 * MiB, 20);
    const int rounds = 5;
    int refused = 0;

    for (int i = 0; i < rounds; i++) {
        QemuTransportIn *t;
        char *err = NULL;

        unlink(path);
        tu_save(path, a, 32 * MiB);
        tu_assert_loads(path, a, 32 * MiB); /* in_close starts the thread */
        t = ops->in_open(path, tu_vm(), &err);
        if (t) {
            ops->in_close(t);
        } else {
            g_test_message("refused: %s", err);
            free(err);
            refused++;
        }
        tu_quiesce();
    }
    g_assert_cmpint(refused, ==, 0);
    g_free(a);
    g_free(path);
}

typedef struct Victim {
    const char *path;
    const uint8_t *data;
    size_t len;             /* (a save: whether the next write must fail) */
    uint64_t size;          /* what the third party truncates to */
    uint64_t offset;        /* or where it writes */
} Victim;

/* against_new_save -- @child run in a child process against a new save
 * of @v's data at its path, with no room thread running */
static void against_new_save(int (*child)(void *), Victim *v,
                             const char *what)
{
    unlink(v->path);
    tu_save(v->path, v->data, v->len);
    tu_quiesce();
    hu_assert_exit_ok(hu_run_child(child, v), what);
}

/* in_open verified the image; then another fd truncates the file. */
static int truncate_during_readv_child(void *opaque)
{
    const Victim *v = opaque;
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(v->len + 1);
    QemuTransportIn *t;
    char *err = NULL;
    size_t done = 0, first = v->len > 2 * MiB ? MiB + 100 : v->len / 2;
    struct iovec iov = { got, first };

    t = ops->in_open(v->path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->in_readv(t, &iov, 1, &err), ==, first);
    truncate_path(v->path, v->size);
    g_assert_cmpint(hu_read_all(t, got + first, v->len + 1 - first,
                                &done, &err), ==, -1);
    hu_assert_error(v->path, err, "");
    /* Whatever came before the error was the verified image. */
    g_assert_true(memcmp(got, v->data, first + done) == 0);
    ops->in_close(t);
    g_free(got);
    return 0;
}

static void test_truncate_during_readv(void)
{
    char *path = tu_path("truncated-while-read");
    uint8_t *a = tu_pattern(8 * MiB, 12);
    /* To nothing, to the header, and into the middle of the payload. */
    static const uint64_t sizes[] = { 0, 12288, 2 * MiB + 5 * MiB + 4097 };

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        Victim v = { path, a, 8 * MiB, sizes[i], 0 };

        against_new_save(truncate_during_readv_child, &v,
                         "in_readv of a truncated image");
    }
    g_free(a);
    g_free(path);
}

/* in_open verified the image; then another fd rewrites payload bytes. */
static int changed_after_verify_child(void *opaque)
{
    const Victim *v = opaque;
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(v->len + 1);
    uint8_t *other = tu_pattern(8192, 99);
    struct iovec iov = { got, 4096 };
    QemuTransportIn *t;
    char *err = NULL;
    size_t done = 0;
    int fd;

    t = ops->in_open(v->path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    fd = open(v->path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, other, 8192, (off_t)(2 * MiB + v->offset)),
                    ==, 8192);
    close(fd);
    /* A positional read of the changed bytes is refused... */
    if (ops->in_preadv) {
        g_assert_cmpint(ops->in_preadv(t, &iov, 1, (off_t)v->offset + 100,
                                       &err), ==, -1);
        hu_assert_error(v->path, err, "");
        err = NULL;
    }
    /* ... and so is the stream, before it reaches them. */
    g_assert_cmpint(hu_read_all(t, got, v->len + 1, &done, &err), ==, -1);
    hu_assert_error(v->path, err, "");
    g_assert_cmpuint(done, <=, v->offset);
    g_assert_true(memcmp(got, v->data, done) == 0);
    ops->in_close(t);
    g_free(other);
    g_free(got);
    return 0;
}

static void test_changed_after_verify(void)
{
    char *path = tu_path("changed-after-verify");
    uint8_t *a = tu_pattern(8 * MiB, 13);
    /* The first block, a middle one, across two blocks. */
    static const uint64_t offsets[] = { 0, 5 * MiB + 123, 3 * MiB - 4000 };

    for (size_t i = 0; i < G_N_ELEMENTS(offsets); i++) {
        Victim v = { path, a, 8 * MiB, 0, offsets[i] };

        against_new_save(changed_after_verify_child, &v,
                         "reading an image changed after in_open");
    }
    g_free(a);
    g_free(path);
}

/*
 * A payload of one block (512 KiB) is verified through its mapping, as a
 * larger one is, when no buffer was prepared for it (a save dropped it):
 * it is served from the mapping, each page checked again, so a truncation
 * or a rewrite after in_open is an error there too, never a SIGBUS or a
 * byte not verified.
 */
static void test_small_payload_mapped(void)
{
    char *path = tu_path("small-mapped");
    uint8_t *a = tu_pattern(512 * 1024, 14);
    static const uint64_t sizes[] = { 0, 2 * MiB + 300 * 1024 + 7 };
    static const uint64_t offsets[] = { 0, 300 * 1024 + 5 };
    struct statfs fs;

    /* On a disk filesystem the payload is read into memory instead. */
    g_assert_cmpint(statfs(tu_dir(), &fs), ==, 0);
    if (fs.f_type != TMPFS_MAGIC) {
        g_test_skip("the image directory is not a tmpfs");
        g_free(a);
        g_free(path);
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        Victim v = { path, a, 512 * 1024, sizes[i], 0 };

        against_new_save(truncate_during_readv_child, &v,
                         "in_readv of a truncated one-block image");
    }
    for (size_t i = 0; i < G_N_ELEMENTS(offsets); i++) {
        Victim v = { path, a, 512 * 1024, 0, offsets[i] };

        against_new_save(changed_after_verify_child, &v,
                         "reading a one-block image changed after in_open");
    }
    g_free(a);
    g_free(path);
}

/* in_open read the payload into the prepared buffer; then another fd
 * rewrites payload bytes: the verified bytes are served, all of them. */
static int prepared_child(void *opaque)
{
    const Victim *v = opaque;
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(v->len + 1);
    uint8_t *other = tu_pattern(8192, 99);
    QemuTransportIn *t;
    char *err = NULL;
    int fd;

    cpr_reader_prepare();
    t = ops->in_open(v->path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    fd = open(v->path, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, other, 8192, (off_t)(2 * MiB + v->offset)),
                    ==, 8192);
    g_assert_cmpint(ftruncate(fd, 2 * MiB + 4096), ==, 0);
    close(fd);
    g_assert_cmpint(hu_read_all(t, got, v->len + 1, NULL, &err), ==, v->len);
    g_assert_null(err);
    g_assert_true(memcmp(got, v->data, v->len) == 0);
    ops->in_close(t);
    g_free(other);
    g_free(got);
    return 0;
}

/*
 * A destination prepares a buffer when the transport loads
 * (cpr_reader_prepare): in_open reads a one-block payload into it, and
 * the restore is served from what was verified there, whatever happens
 * to the file afterwards (rewritten, then truncated).
 */
static void test_prepared_buffer(void)
{
    char *path = tu_path("prepared");
    uint8_t *a = tu_pattern(512 * 1024, 15);
    Victim v = { path, a, 512 * 1024, 0, 100 * 1024 + 3 };

    against_new_save(prepared_child, &v,
                     "reading a prepared one-block image changed after "
                     "in_open");
    g_free(a);
    g_free(path);
}

/*
 * A save into an image whose live payload is small (4096 bytes at 2 MiB),
 * so the new one goes to 4 MiB, inside the initial 8 MiB.  After 1 MiB,
 * another fd truncates the file to v->size; then v->offset more bytes
 * are written (within the mapping, or forcing growth).  No SIGBUS, the
 * save never commits, and no new generation is in the file.
 */
static int truncate_during_save_child(void *opaque)
{
    const Victim *v = opaque;
    const QemuTransportOps *ops = tu_ops();
    uint8_t *b = tu_pattern(MiB + v->offset, 14);
    struct iovec first = { b, MiB }, more = { b + MiB, v->offset };
    QemuTransportOut *t;
    char *err = NULL;
    ssize_t n;

    hu_limit_file_size(1 * GiB, FALSE);
    t = ops->out_open(v->path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->out_writev(t, &first, 1, &err), ==, MiB);
    truncate_path(v->path, v->size);
    n = ops->out_writev(t, &more, 1, &err);
    if (v->len) {
        /* The write lands where the file no longer is. */
        g_assert_cmpint(n, ==, -1);
    }
    if (n < 0) {
        hu_assert_error(v->path, err, "");
        err = NULL;
    } else {
        g_test_message("out_writev after the truncation returned %zd", n);
    }
    if (ops->out_commit(t, tu_vm(), &err) == 0) {
        g_error("%s: out_commit succeeded on a file truncated during the "
                "save", v->path);
    }
    hu_assert_error(v->path, err, "");
    ops->out_abort(t);
    ops->out_close(t);
    g_assert_cmpuint(hu_newest_generation(v->path), !=, 2);
    g_free(b);
    return 0;
}

static void check_truncate_during_save(const char *name, uint64_t more,
                                       gboolean writev_must_fail)
{
    char *path = tu_path(name);
    uint8_t *a = tu_pattern(4096, 15);
    static const uint64_t sizes[] = { 0, 4096, 12288, 3 * MiB };

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        Victim v = { path, NULL, writev_must_fail, sizes[i], more };
        int status;

        unlink(path);
        tu_save(path, a, 4096);
        tu_quiesce();
        status = hu_run_child(truncate_during_save_child, &v);
        hu_assert_exit_ok(status, name);
    }
    g_free(a);
    g_free(path);
}

/* Item 4: the next write lands in the truncated part of the mapping. */
static void test_truncate_during_writev(void)
{
    check_truncate_during_save("truncated-while-written", MiB, TRUE);
}

/* Item 4: the next write grows the file again; the old writer then
 * committed a save whose start (and superblock) the truncation wiped. */
static void test_grow_after_truncate(void)
{
    check_truncate_during_save("grown-after-truncate", 8 * MiB, FALSE);
}

/*
 * Item 4: a hole punched in the region the next save uses, on a tmpfs
 * then filled to 100% by another file.  The store into the hole cannot
 * get a page: the old writer died of SIGBUS.  The save must fail with
 * ENOSPC, and the previous image must still load.
 */
static int punched_full_child(void *opaque)
{
    const char *dir = opaque;
    const QemuTransportOps *ops = tu_ops();
    char *path = g_build_filename(dir, "punched.cpr", NULL);
    char *filler = g_build_filename(dir, "filler", NULL);
    uint8_t *a = tu_pattern(MiB, 16), *b = tu_pattern(MiB, 17);
    uint8_t *chunk = g_malloc0(MiB);
    struct iovec iov = { b, MiB };
    QemuTransportOut *t;
    char *err = NULL;
    int fd;

    if (!hu_private_tmpfs(dir, "size=32m")) {
        return 77;
    }
    tu_save(path, a, MiB);          /* at 2 MiB; the next goes to 6 MiB */
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              (off_t)(6 * MiB), (off_t)(2 * MiB)), ==, 0);
    close(fd);
    fd = open(filler, O_WRONLY | O_CREAT, 0600);
    g_assert_cmpint(fd, >=, 0);
    while (write(fd, chunk, MiB) > 0) {
    }
    while (write(fd, chunk, 4096) > 0) {
    }
    close(fd);
    g_assert_cmpuint(hu_fs_free(dir), <, 4096);

    t = ops->out_open(path, tu_vm(), &err);
    if (!t) {
        hu_assert_error(path, err, "No space left on device");
    } else {
        if (ops->out_writev(t, &iov, 1, &err) < 0) {
            hu_assert_error(path, err, "No space left on device");
            err = NULL;
            g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, -1);
            free(err);
        } else if (ops->out_commit(t, tu_vm(), &err) == 0) {
            g_error("%s: a save into a punched hole on a full tmpfs "
                    "committed", path);
        } else {
            hu_assert_error(path, err, "No space left on device");
        }
        ops->out_abort(t);
        ops->out_close(t);
    }
    g_assert_cmpuint(hu_newest_generation(path), ==, 1);
    tu_assert_loads(path, a, MiB);
    g_free(chunk);
    g_free(a);
    g_free(b);
    g_free(filler);
    g_free(path);
    return 0;
}

static void test_punched_hole_full_tmpfs(void)
{
    char *dir = tu_path("punched");
    int status;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_quiesce();
    status = hu_run_child(punched_full_child, dir);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        g_test_skip("cannot mount a private tmpfs");
    } else {
        hu_assert_exit_ok(status, "a save into a punched hole, tmpfs full");
    }
    g_free(dir);
}

#define HASHED_LEN (200 * MiB)

typedef struct Truncator {
    const char *path;
    unsigned delay_us;
    uint64_t size;
    atomic_bool go;
} Truncator;

static void *truncator(void *opaque)
{
    Truncator *tr = opaque;

    while (!atomic_load(&tr->go)) {
    }
    g_usleep(tr->delay_us);
    truncate_path(tr->path, tr->size);
    return NULL;
}

typedef struct HashRace {
    const char *path;
    const uint8_t *data;
    unsigned delay_us;
    uint64_t size;
} HashRace;

static int truncate_during_hash_child(void *opaque)
{
    const HashRace *h = opaque;
    const QemuTransportOps *ops = tu_ops();
    Truncator tr = { h->path, h->delay_us, h->size, false };
    QemuTransportIn *t;
    pthread_t thread;
    char *err = NULL;
    double t0;

    g_assert_cmpint(pthread_create(&thread, NULL, truncator, &tr), ==, 0);
    t0 = hu_now();
    atomic_store(&tr.go, true);
    t = ops->in_open(h->path, tu_vm(), &err);
    if (!t) {
        g_test_message("truncated after %u us: in_open refused after %.3f s",
                       h->delay_us, hu_now() - t0);
        hu_assert_error(h->path, err, "");
    } else {
        uint8_t *got = g_malloc(HASHED_LEN + 1);
        size_t done = 0;
        ssize_t n = hu_read_all(t, got, HASHED_LEN + 1, &done, &err);

        g_test_message("truncated after %u us: in_open passed after %.3f s, "
                       "in_readv %s", h->delay_us, hu_now() - t0,
                       n < 0 ? "failed" : "read all");
        if (n < 0) {
            hu_assert_error(h->path, err, "");
        } else {
            g_assert_cmpint(n, ==, HASHED_LEN);
            done = HASHED_LEN;
        }
        g_assert_true(memcmp(got, h->data, done) == 0);
        ops->in_close(t);
        g_free(got);
    }
    pthread_join(thread, NULL);
    return 0;
}

/*
 * Item 4: a truncation while in_open verifies a 200 MiB image (the old
 * reader hashed a mapping: SIGBUS), at a few moments.
 */
static void test_truncate_during_hash(void)
{
    char *template = tu_path("hashed-template");
    char *path = tu_path("hashed");
    uint8_t *a = tu_pattern(HASHED_LEN, 18);
    static const unsigned delays[] = { 0, 2000, 5000, 10000, 20000, 40000 };

    tu_save(template, a, HASHED_LEN);
    for (size_t i = 0; i < G_N_ELEMENTS(delays); i++) {
        HashRace h = { path, a, delays[i], i % 2 ? 0 : 2 * MiB + 100 * MiB };

        hu_copy_file(template, path);
        tu_quiesce();
        hu_assert_exit_ok(hu_run_child(truncate_during_hash_child, &h),
                          "in_open of an image truncated meanwhile");
    }
    unlink(template);
    unlink(path);
    g_free(a);
    g_free(path);
    g_free(template);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/third-party/room-after-rename", test_room_after_rename);
    g_test_add_func("/third-party/room-after-symlink",
                    test_room_after_symlink);
    g_test_add_func("/third-party/room-after-every-restore",
                    test_room_after_every_restore);
    g_test_add_func("/third-party/restore-during-room-making",
                    test_restore_during_room_making);
    g_test_add_func("/third-party/truncate-during-readv",
                    test_truncate_during_readv);
    g_test_add_func("/third-party/small-payload-mapped",
                    test_small_payload_mapped);
    g_test_add_func("/third-party/prepared-buffer", test_prepared_buffer);
    g_test_add_func("/third-party/changed-after-verify",
                    test_changed_after_verify);
    g_test_add_func("/third-party/truncate-during-writev",
                    test_truncate_during_writev);
    g_test_add_func("/third-party/grow-after-truncate",
                    test_grow_after_truncate);
    g_test_add_func("/third-party/punched-hole-full-tmpfs",
                    test_punched_hole_full_tmpfs);
    g_test_add_func("/third-party/truncate-during-hash",
                    test_truncate_during_hash);
    return g_test_run();
}
