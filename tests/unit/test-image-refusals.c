/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Every refusal names the file and the reason, and destroys nothing. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "reader.h"
#include "unit-util.h"
#include "writer.h"

#define MiB (1u << 20)

/* A committed image of @len pattern bytes; returns its record. */
static CprRecord make_image(const char *path, size_t len, uint32_t seed)
{
    uint8_t *buf = tu_pattern(len, seed);
    char *err = NULL;
    CprReader *r;
    CprRecord rec;

    tu_save(path, buf, len);
    r = cpr_reader_open(path, &err);
    g_assert_nonnull(r);
    rec = *cpr_reader_record(r);
    cpr_reader_close(r);
    g_free(buf);
    return rec;
}

static void rewrite_record(const char *path, const CprRecord *rec)
{
    uint8_t buf[CPR_REC_SIZE];
    int fd = open(path, O_WRONLY);

    cpr_record_encode(rec, buf);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec->generation))),
                    ==, sizeof(buf));
    close(fd);
}

static void test_plugin_version(void)
{
    QemuTransportHostInfo old = { 0, 0, "8.0", NULL },
                          newer = { 4, 5, "12.0", NULL },
                          v1 = { 1, 1, "10.2.2", NULL },
                          v2 = { 1, 2, "10.2.2", NULL };
    char *err = NULL;

    g_assert_null(qemu_transport_plugin_init(&old, &err));
    g_assert_nonnull(strstr(err, "transport-pmem.so: "));
    g_assert_nonnull(strstr(err, "versions 0 to 0"));
    free(err);
    err = NULL;
    g_assert_null(qemu_transport_plugin_init(&newer, &err));
    g_assert_nonnull(strstr(err, "versions 4 to 5"));
    free(err);
    /* a QEMU of version 1 passes no ram_block_size: refused */
    err = NULL;
    g_assert_null(qemu_transport_plugin_init(&v1, &err));
    g_assert_nonnull(strstr(err, "versions 1 to 1"));
    free(err);
    /* nor one of version 2, which passes no block nodes */
    err = NULL;
    g_assert_null(qemu_transport_plugin_init(&v2, &err));
    g_assert_nonnull(strstr(err, "versions 1 to 2"));
    free(err);
    g_assert_nonnull(tu_ops());
    g_assert_cmpstr(tu_ops()->scheme, ==, "pmem");
}

static void test_missing_directory(void)
{
    char *path = tu_path("no-such-dir/vm.cpr");

    tu_assert_save_refused(path, "No such file or directory");
    tu_assert_load_refused(path, "No such file or directory");
    g_free(path);
}

static void save_refused_permission(const char *path)
{
    tu_assert_save_refused(path, "Permission denied");
}

static void test_read_only_location(void)
{
    char *dir = tu_path("ro");
    char *path = g_build_filename(dir, "vm.cpr", NULL);

    g_assert_cmpint(mkdir(dir, 0555), ==, 0);
    if (geteuid() == 0) {
        /* Root ignores modes: drop to nobody in a child. */
        tu_run_as_nobody(save_refused_permission, path);
    } else {
        save_refused_permission(path);
    }
    g_free(path);
    g_free(dir);
}

/* Child: a tiny private tmpfs, or a file size limit if we cannot mount. */
/* A save into @path whose write of @iov fails with @what: nothing is
 * committed. */
static void stream_refused(const char *path, const struct iovec *iov,
                           const char *what)
{
    const QemuTransportOps *ops = tu_ops();
    QemuTransportOut *o;
    char *err = NULL;

    o = ops->out_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(o);
    g_assert_cmpint(ops->out_writev(o, iov, 1, &err), ==, -1);
    g_assert_true(g_str_has_prefix(err, path));
    g_assert_nonnull(strstr(err, what));
    free(err);
    err = NULL;
    g_assert_cmpint(ops->out_commit(o, tu_vm(), &err), ==, -1);
    free(err);
    ops->out_abort(o);
    ops->out_close(o);
    tu_assert_load_refused(path, "no committed image");
}

static int no_space_child(const char *dir)
{
    char *path = g_build_filename(dir, "vm.cpr", NULL);
    char *big = g_build_filename(dir, "big.cpr", NULL);
    uint8_t *buf = tu_pattern(16 * MiB, 9);
    struct iovec iov = { buf, 16 * MiB };
    const char *what = "No space left on device";

    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", dir, "tmpfs", 0, "size=1m") < 0) {
        struct rlimit rl = { 1 * MiB, 1 * MiB };

        g_printerr("# cannot mount a tmpfs (%s): using RLIMIT_FSIZE\n",
                   strerror(errno));
        signal(SIGXFSZ, SIG_IGN);
        g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
        what = "File too large";
    }
    if (strcmp(what, "File too large") == 0) {
        /* Not even the initial size: out_open fails, and leaves no file. */
        tu_assert_save_refused(path, what);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    } else {
        /* out_open allocates the header only, which fits: the stream's
         * first write that does not fails. */
        stream_refused(path, &iov, what);
        /* Room for the initial size, not for the stream: likewise. */
        g_assert_cmpint(umount(dir), ==, 0);
        g_assert_cmpint(mount("none", dir, "tmpfs", 0, "size=12m"), ==, 0);
        stream_refused(big, &iov, what);
    }
    g_free(buf);
    g_free(path);
    g_free(big);
    return 0;
}

static void test_no_space(void)
{
    char *dir = tu_path("tiny");
    pid_t pid;
    int status;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    pid = fork();
    if (pid == 0) {
        _exit(no_space_child(dir));
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_free(dir);
}

static void test_not_ours(void)
{
    char *path = tu_path("user-file");
    static const char text[] = "precious user data\n";
    char *got = NULL;
    gsize len;

    tu_write_file(path, text, sizeof(text));
    tu_assert_save_refused(path, "exists and is not a pmem CPR image; "
                           "refusing to overwrite it");
    tu_assert_load_refused(path, "too short");
    g_assert_true(g_file_get_contents(path, &got, &len, NULL));
    g_assert_cmpmem(got, len, text, sizeof(text));
    g_free(got);
    g_free(path);
}

static void test_zeroed_file(void)
{
    char *path = tu_path("zeroed");
    uint8_t *zeros = g_malloc0(4 * MiB);

    tu_write_file(path, zeros, 4 * MiB);
    tu_assert_load_refused(path, "not a pmem CPR image (no valid superblock)");
    tu_assert_save_refused(path, "exists and is not a pmem CPR image");
    g_free(zeros);
    g_free(path);
}

/* An empty existing file holds nothing to destroy: it becomes an image. */
static void test_empty_file_is_adopted(void)
{
    char *path = tu_path("empty");
    uint8_t *buf = tu_pattern(1000, 1);

    tu_write_file(path, "", 0);
    tu_assert_load_refused(path, "too short");
    tu_save(path, buf, 1000);
    tu_assert_loads(path, buf, 1000);
    g_free(buf);
    g_free(path);
}

static void test_truncated(void)
{
    char *path = tu_path("truncated");
    CprRecord rec = make_image(path, MiB, 1);

    g_assert_cmpint(truncate(path, (off_t)(rec.payload_off + MiB / 2)), ==,
                    0);
    tu_assert_load_refused(path, "lies outside the file");
    g_assert_cmpint(truncate(path, 100), ==, 0);
    tu_assert_load_refused(path, "too short");
    g_free(path);
}

/* No fallback to the older generation when the newest payload is bad. */
static void test_payload_bit_flip(void)
{
    char *path = tu_path("payload-flip");
    CprRecord rec;

    make_image(path, 300 * 1024, 1);
    rec = make_image(path, 300 * 1024, 2);
    tu_flip_bit(path, rec.payload_off + 12345, 3);
    tu_assert_load_refused(path, "generation 2) is corrupt: payload "
                           "checksum mismatch");
    g_free(path);
}

/* A damaged newest record is a torn commit: the older one loads. */
static void test_record_bit_flip(void)
{
    char *path = tu_path("record-flip");
    uint8_t *first = tu_pattern(5000, 1);
    CprRecord rec;

    tu_save(path, first, 5000);
    rec = make_image(path, 7000, 2);
    g_assert_cmpuint(rec.generation, ==, 2);
    tu_flip_bit(path, CPR_SLOT_OFFSET(0) + 50, 0);
    tu_assert_loads(path, first, 5000);
    /* Now damage the older one too: nothing is left. */
    tu_flip_bit(path, CPR_SLOT_OFFSET(1) + 170, 7);
    tu_assert_load_refused(path, "no committed image (all commit records "
                           "are damaged)");
    g_free(first);
    g_free(path);
}

static void test_no_commit(void)
{
    char *path = tu_path("uncommitted");
    uint8_t *buf = tu_pattern(5000, 1);

    tu_save_aborted(path, buf, 5000, 4000);
    tu_assert_load_refused(path, "no committed image");
    g_free(buf);
    g_free(path);
}

/*
 * C6: a store after the commit (or the abort) is refused, and lands
 * nowhere: the committed payload, whose lock the commit released for a
 * reader, stays as committed.
 */
static void check_store_after(gboolean commit)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path(commit ? "write-after-commit" : "write-after-abort");
    uint8_t *a = tu_pattern(5000, 7), *b = tu_pattern(5000, 8);
    struct iovec iov = { a, 5000 }, other = { b, 5000 };
    QemuTransportOut *t;
    char *err = NULL;

    if (!commit) {
        tu_save(path, a, 5000);
    }
    t = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->out_writev(t, commit ? &iov : &other, 1, &err), ==,
                    5000);
    if (commit) {
        g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, 0);
    } else {
        ops->out_abort(t);
    }
    g_assert_cmpint(ops->out_writev(t, &other, 1, &err), ==, -1);
    g_assert_nonnull(strstr(err, "save already committed or aborted"));
    free(err);
    err = NULL;
    g_assert_cmpint(ops->out_pwritev(t, &other, 1, 0, &err), ==, -1);
    g_assert_nonnull(strstr(err, "save already committed or aborted"));
    free(err);
    ops->out_close(t);
    tu_assert_loads(path, a, 5000);
    tu_quiesce();
    g_free(a);
    g_free(b);
    g_free(path);
}

static void test_write_after_commit(void)
{
    check_store_after(TRUE);
}

static void test_write_after_abort(void)
{
    check_store_after(FALSE);
}

static void test_newer_version(void)
{
    char *path = tu_path("newer");
    CprRecord rec = make_image(path, 4096, 1);
    CprSuperblock sb = { .version = CPR_SB_VERSION + 1 };
    uint8_t buf[CPR_SB_SIZE];
    int fd;

    rec.version = CPR_REC_VERSION + 1;
    rewrite_record(path, &rec);
    tu_assert_load_refused(path, "image format version 4 is newer than this "
                           "transport (3)");
    tu_assert_save_refused(path, "image format version 4 is newer than this "
                           "transport (3); refusing to overwrite it");
    rec.version = CPR_REC_VERSION;
    rewrite_record(path, &rec);
    cpr_sb_encode(&sb, buf);
    fd = open(path, O_WRONLY);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    close(fd);
    tu_assert_load_refused(path, "image format version 2 (superblock) is "
                           "newer than this transport (1)");
    tu_assert_save_refused(path, "refusing to overwrite it");
    g_free(path);
}

static void test_invalidated(void)
{
    char *path = tu_path("invalidated");
    CprRecord rec;

    make_image(path, 4096, 1);
    rec = make_image(path, 4096, 2);
    rec.flags |= CPR_REC_FLAG_INVALIDATED;
    rewrite_record(path, &rec);
    tu_assert_load_refused(path, "image (generation 2) was invalidated");
    g_free(path);
}

static void test_not_regular(void)
{
    char *dir = tu_path("a-directory");
    char *fifo = tu_path("a-fifo");
    char *loop = tu_path("a-loop");

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_assert_load_refused(dir, "is a directory");
    tu_assert_save_refused(dir, "is a directory");
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    tu_assert_load_refused(fifo, "is a FIFO");
    tu_assert_save_refused(fifo, "is a FIFO");
    g_assert_cmpint(symlink("a-loop", loop), ==, 0);
    tu_assert_load_refused(loop, "Too many levels of symbolic links");
    tu_assert_save_refused(loop, "Too many levels of symbolic links");
    g_assert_cmpint(access("/dev/null", F_OK), ==, 0);
    tu_assert_load_refused("/dev/null", "is a character device");
    g_free(dir);
    g_free(fifo);
    g_free(loop);
}

/*
 * A FIFO at the path, or behind a symlink planted there, is refused
 * without ever being opened (issue 15, item 5): a save used to open a
 * symlink's target O_RDWR before looking at its type, and so opened a
 * device (/dev/ptmx allocated a pty).  inotify sees every open of the
 * FIFO; a look with O_PATH is none.
 */
static void test_never_opened(void)
{
    char *fifo = tu_path("b-fifo"), *link = tu_path("b-link");
    char events[4096];
    int in;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_cmpint(symlink(fifo, link), ==, 0);
    in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    g_assert_cmpint(in, >=, 0);
    g_assert_cmpint(inotify_add_watch(in, fifo, IN_OPEN), >=, 0);
    tu_assert_save_refused(link, "is a symlink to something that is a FIFO");
    tu_assert_save_refused(fifo, "is a FIFO");
    tu_assert_load_refused(link, "is a FIFO");
    tu_assert_load_refused(fifo, "is a FIFO");
    if (read(in, events, sizeof(events)) >= 0) {
        g_error("%s was opened", fifo);
    }
    g_assert_cmpint(errno, ==, EAGAIN);
    close(in);
    g_free(fifo);
    g_free(link);
}

static void load_refused_permission(const char *path)
{
    tu_assert_load_refused(path, "Permission denied");
}

static void test_unreadable(void)
{
    char *path = tu_path("unreadable");

    make_image(path, 4096, 1);
    g_assert_cmpint(chmod(path, 0), ==, 0);
    if (geteuid() == 0) {
        tu_run_as_nobody(load_refused_permission, path);
    } else {
        load_refused_permission(path);
    }
    g_free(path);
}

static void test_concurrent_save(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("locked");
    char *err = NULL;
    QemuTransportOut *first, *again;
    uint8_t *buf = tu_pattern(100, 1);

    first = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(first);
    tu_assert_save_refused(path, "in use by another save or a restore");
    ops->out_close(first);
    again = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(again);
    ops->out_close(again);
    tu_save(path, buf, 100);
    tu_assert_loads(path, buf, 100);
    g_free(buf);
    g_free(path);
}

/* A save and a restore of one file exclude each other, in both orders. */
static void test_save_during_restore(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("shared");
    uint8_t *buf = tu_pattern(100, 2);
    QemuTransportOut *out;
    QemuTransportIn *in;
    char *err = NULL;

    tu_save(path, buf, 100);
    in = ops->in_open(path, tu_vm(), &err);
    g_assert_nonnull(in);
    tu_assert_save_refused(path, "in use by another save or a restore");
    ops->in_close(in);
    out = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(out);
    tu_assert_load_refused(path, "a save to this file is in progress");
    ops->out_close(out);
    tu_assert_loads(path, buf, 100);
    g_free(buf);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/refuse/plugin-version", test_plugin_version);
    g_test_add_func("/refuse/missing-directory", test_missing_directory);
    g_test_add_func("/refuse/read-only-location", test_read_only_location);
    g_test_add_func("/refuse/no-space", test_no_space);
    g_test_add_func("/refuse/not-ours", test_not_ours);
    g_test_add_func("/refuse/zeroed-file", test_zeroed_file);
    g_test_add_func("/refuse/empty-file-is-adopted",
                    test_empty_file_is_adopted);
    g_test_add_func("/refuse/truncated", test_truncated);
    g_test_add_func("/refuse/payload-bit-flip", test_payload_bit_flip);
    g_test_add_func("/refuse/record-bit-flip", test_record_bit_flip);
    g_test_add_func("/refuse/no-commit", test_no_commit);
    g_test_add_func("/refuse/write-after-commit", test_write_after_commit);
    g_test_add_func("/refuse/write-after-abort", test_write_after_abort);
    g_test_add_func("/refuse/newer-version", test_newer_version);
    g_test_add_func("/refuse/invalidated", test_invalidated);
    g_test_add_func("/refuse/not-regular", test_not_regular);
    g_test_add_func("/refuse/never-opened", test_never_opened);
    g_test_add_func("/refuse/unreadable", test_unreadable);
    g_test_add_func("/refuse/concurrent-save", test_concurrent_save);
    g_test_add_func("/refuse/save-during-restore", test_save_during_restore);
    return g_test_run();
}
