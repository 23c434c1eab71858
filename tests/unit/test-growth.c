/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Growth (issue 8, item 6): a growth that fails leaves nothing behind,
 * and a save that fits is not failed by the wish to double the file.
 * Each case runs in a forked child, on a small filesystem of its own in
 * a private mount namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostile-util.h"
#include "unit-util.h"

/* 77: this host cannot make the filesystem; the test is skipped. */
#define SKIP 77

static int run(const char *cmd)
{
    int status = system(cmd);

    if (status != 0) {
        char *s = hu_status_str(status);

        g_printerr("# \"%s\": %s\n", cmd, s);
        g_free(s);
    }
    return status;
}

/* In a child: a @mib MiB ext4 filesystem on a loop device at @dir. */
static gboolean private_ext4(const char *dir, unsigned mib)
{
    char *img = g_strconcat(dir, ".img", NULL);
    char *cmd;
    gboolean ok;

    cmd = g_strdup_printf("truncate -s %uM '%s' && mkfs.ext4 -q -F '%s' "
                          ">/dev/null 2>&1", mib, img, img);
    ok = run(cmd) == 0;
    g_free(cmd);
    if (ok && (unshare(CLONE_NEWNS) < 0 ||
               mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)) {
        g_printerr("# cannot make a private mount namespace: %s\n",
                   strerror(errno));
        ok = FALSE;
    }
    if (ok) {
        cmd = g_strdup_printf("mount -o loop '%s' '%s'", img, dir);
        ok = run(cmd) == 0;
        g_free(cmd);
    }
    g_free(img);
    return ok;
}

/*
 * A save whose one write needs more than the filesystem has: on ext4 a
 * failed posix_fallocate keeps the blocks it got (and the size it
 * reached), so the old writer left the image grown and the filesystem
 * 100% full.  The growth must be rolled back.
 */
static int ext4_rollback_child(void *opaque)
{
    const char *dir = opaque;
    const QemuTransportOps *ops = tu_ops();
    char *path = g_build_filename(dir, "vm.cpr", NULL);
    uint8_t *a = tu_pattern(4096, 21), *big = tu_pattern(64 * MiB, 22);
    struct iovec iov = { big, 64 * MiB };
    uint64_t size, holes, free_before, free_after;
    QemuTransportOut *t;
    struct stat st;
    char *err = NULL;

    if (!private_ext4(dir, 48)) {
        return SKIP;
    }
    tu_save(path, a, 4096);
    size = hu_file_size(path);
    g_assert_cmpint(stat(path, &st), ==, 0);
    /* A new image is allocated as its saves reach it: the save below may
     * fill holes inside its size, which the next save uses. */
    holes = size - MIN(size, (uint64_t)st.st_blocks * 512);
    free_before = hu_fs_free(dir);
    g_assert_cmpuint(free_before, <, 64 * MiB);

    t = ops->out_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->out_writev(t, &iov, 1, &err), ==, -1);
    hu_assert_error(path, err, "No space left on device");
    err = NULL;
    g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, -1);
    free(err);
    ops->out_abort(t);
    ops->out_close(t);

    free_after = hu_fs_free(dir);
    g_test_message("image %llu -> %llu bytes, free %llu -> %llu bytes",
                   (unsigned long long)size,
                   (unsigned long long)hu_file_size(path),
                   (unsigned long long)free_before,
                   (unsigned long long)free_after);
    g_assert_cmpuint(hu_file_size(path), ==, size);
    g_assert_cmpuint(free_after + 256 * 1024 + holes, >=, free_before);
    tu_assert_loads(path, a, 4096);
    tu_quiesce();
    umount2(dir, MNT_DETACH);
    g_free(a);
    g_free(big);
    g_free(path);
    return 0;
}

static void run_on_own_fs(const char *name, int (*fn)(void *),
                          const char *what)
{
    char *dir = tu_path(name);
    int status;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_quiesce();
    status = hu_run_child(fn, dir);
    if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP) {
        g_test_skip("cannot make a private filesystem");
    } else {
        hu_assert_exit_ok(status, what);
    }
    g_free(dir);
}

static void test_ext4_failed_growth_rolled_back(void)
{
    run_on_own_fs("ext4", ext4_rollback_child,
                  "a growth beyond the free space of an ext4");
}

/*
 * A new image takes 8 MiB; a 9 MiB stream at 2 MiB needs 11 MiB.  On a
 * 12 MiB tmpfs the doubling to 16 MiB cannot be had, the 11 MiB can:
 * the old writer, which only doubled, failed this save.
 */
static int exact_growth_child(void *opaque)
{
    const char *dir = opaque;
    char *path = g_build_filename(dir, "vm.cpr", NULL);
    uint8_t *a = tu_pattern(9 * MiB, 23);

    if (!hu_private_tmpfs(dir, "size=12m")) {
        return SKIP;
    }
    tu_save(path, a, 9 * MiB);
    g_test_message("image %llu bytes, %llu bytes free",
                   (unsigned long long)hu_file_size(path),
                   (unsigned long long)hu_fs_free(dir));
    g_assert_cmpuint(hu_file_size(path), <=, 12 * MiB);
    tu_assert_loads(path, a, 9 * MiB);
    tu_quiesce();
    g_free(a);
    g_free(path);
    return 0;
}

static void test_growth_short_of_doubling(void)
{
    run_on_own_fs("tmpfs12", exact_growth_child,
                  "a 9 MiB save on a 12 MiB tmpfs");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/growth/ext4-failed-growth-rolled-back",
                    test_ext4_failed_growth_rolled_back);
    g_test_add_func("/growth/short-of-doubling",
                    test_growth_short_of_doubling);
    return g_test_run();
}
