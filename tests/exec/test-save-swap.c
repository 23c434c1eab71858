/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `cpr-pmem save` (run by root's QEMU) against a user who can write the
 * image's directory and swaps the image for a symlink to another file
 * while the save opens it.  The race is made deterministic: this program
 * runs the save in-process (tool_save) and interposes flock(), so the
 * swap happens right after the writer took its lock on the image, which
 * is the moment the old helper then reopened the path by name (and took
 * a failed shared flock on the link's target, which the "attacker" holds
 * exclusively, as proof it was the same file).
 */
#include "exec-stream.h"
#include "helper-status.h"
#include "reader.h"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

/* What the interposed flock() does on the image's first exclusive lock. */
static const char *swap_image, *swap_moved, *swap_victim;
static dev_t swap_dev;
static ino_t swap_ino;

/*
 * flock -- the real one (libc's is a bare system call), then, once, if
 * this is the exclusive lock on the image: move the image away and put a
 * symlink to the victim in its place.
 */
int flock(int fd, int op)
{
    int ret = (int)syscall(SYS_flock, fd, op);
    int e = errno;
    struct stat st;

    if (ret == 0 && (op & LOCK_EX) && swap_image && fstat(fd, &st) == 0 &&
        st.st_dev == swap_dev && st.st_ino == swap_ino) {
        g_assert_cmpint(rename(swap_image, swap_moved), ==, 0);
        g_assert_cmpint(symlink(swap_victim, swap_image), ==, 0);
        swap_image = NULL;
    }
    errno = e;
    return ret;
}

static GByteArray *read_all(const char *path)
{
    char *data;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_byte_array_new_take((guint8 *)data, len);
}

/* tool_save(@img) in a child with @stream as its stdin; its exit code. */
static int save_in_child(const char *img, const GByteArray *stream)
{
    g_autofree char *in = g_build_filename(dir, "stream", NULL);
    int status;
    pid_t pid;

    g_assert_true(g_file_set_contents(in, (const char *)stream->data,
                                      stream->len, NULL));
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        int fd = open(in, O_RDONLY);

        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0) {
            _exit(99);
        }
        _exit(tool_save(img, "swap"));
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void assert_loads(const char *path, const GByteArray *want)
{
    char *why = NULL;
    CprReader *r = cpr_reader_open(path, &why);
    g_autoptr(GByteArray) got = g_byte_array_new();
    guint8 buf[65536];
    ssize_t n;

    if (!r) {
        g_error("%s does not load: %s", path, why);
    }
    while ((n = cpr_reader_read(r, buf, sizeof(buf), &why)) > 0) {
        g_byte_array_append(got, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    cpr_reader_close(r);
    g_assert_cmpmem(got->data, got->len, want->data, want->len);
}

/*
 * The image is swapped for a symlink to a file the user locked: the
 * victim keeps every byte and its size, and the status block lands in
 * the image the save really wrote (which loads the stream).
 */
static void test_symlink_swap(void)
{
    g_autofree char *img = g_build_filename(dir, "vm.cpr", NULL);
    g_autofree char *moved = g_build_filename(dir, "vm.cpr.moved", NULL);
    g_autofree char *victim = g_build_filename(dir, "victim", NULL);
    g_autoptr(GByteArray) stream = exec_stream_new(7, 100000, 5000);
    g_autoptr(GByteArray) before = g_byte_array_new();
    g_autoptr(GByteArray) after = NULL;
    CprHelperStatus st;
    CprDecode dec;
    struct stat sb;
    int lock_fd, fd;

    /* a root-owned, world-readable file of 1221 bytes, say */
    for (int i = 0; i < 1221; i++) {
        guint8 c = (guint8)('a' + i % 26);

        g_byte_array_append(before, &c, 1);
    }
    g_assert_true(g_file_set_contents(victim, (const char *)before->data,
                                      before->len, NULL));
    /* an image with a first save in it */
    g_assert_cmpint(save_in_child(img, stream), ==, TOOL_OK);
    g_assert_cmpint(stat(img, &sb), ==, 0);
    swap_image = img;
    swap_moved = moved;
    swap_victim = victim;
    swap_dev = sb.st_dev;
    swap_ino = sb.st_ino;
    /* the user's exclusive lock on the victim */
    lock_fd = open(victim, O_RDONLY);
    g_assert_cmpint(lock_fd, >=, 0);
    g_assert_cmpint(flock(lock_fd, LOCK_EX | LOCK_NB), ==, 0);

    g_assert_cmpint(save_in_child(img, stream), ==, TOOL_OK);
    close(lock_fd);

    g_assert_true(g_file_test(img, G_FILE_TEST_IS_SYMLINK));
    after = read_all(victim);
    g_test_message("victim: %u bytes before, %u after", before->len,
                   after->len);
    g_assert_cmpmem(after->data, after->len, before->data, before->len);
    /* the second save's status went into the file it saved into */
    fd = open(moved, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(cpr_hs_read(fd, &st, &dec), ==, 0);
    close(fd);
    g_assert_cmpint(dec, ==, CPR_DECODE_OK);
    g_assert_cmpuint(st.state, ==, CPR_HS_COMMITTED);
    g_assert_cmpuint(st.attempt, ==, 2);
    g_assert_cmpuint(st.generation, ==, 2);
    g_assert_cmpstr(st.id, ==, "swap");
    assert_loads(moved, stream);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    dir = g_dir_make_tmp("save-swap-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_test_add_func("/save-swap/symlink-to-locked-file", test_symlink_swap);
    ret = g_test_run();
    if (ret == 0) {
        g_autofree char *cmd = g_strdup_printf("rm -rf %s", dir);

        g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
    }
    return ret;
}
