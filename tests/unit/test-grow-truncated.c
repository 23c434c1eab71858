/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Another process truncates the image right after the writer grew it
 * and before it maps the new size (posix_fallocate and ftruncate are
 * interposed here to do it at exactly that moment): the append fails with an error that
 * names the file and says it was truncated, not libpmem's "mmap 0
 * bytes", and never stores past a short mapping.
 */
#include "binding.h"
#include "unit-util.h"
#include "errmsg.h"
#include "writer.h"
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* >= 0: the size the next growth's file is cut to, right after it. */
static off_t cut_to = -1;

/*
 * posix_fallocate -- the real allocation (the system call libc makes),
 * then, once armed, the third party's truncation.
 */
/* The third party's cut, once armed. */
static void cut(int fd)
{
    if (cut_to >= 0) {
        g_assert_cmpint(syscall(SYS_ftruncate, fd, cut_to), ==, 0);
        cut_to = -1;
    }
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    int err = syscall(SYS_fallocate, fd, 0, off, len) < 0 ? errno : 0;

    if (err == 0 && off > 0) {
        cut(fd);
    }
    return err;
}

/*
 * ftruncate -- likewise: where stores go by pwrite() (tmpfs, a disk
 * filesystem), a growth only sets the size, and allocates nothing.
 */
int ftruncate(int fd, off_t len)
{
    int ret = (int)syscall(SYS_ftruncate, fd, len);

    if (ret == 0 && len > 0) {
        cut(fd);
    }
    return ret;
}

static void grow_cut_to(gconstpointer data)
{
    off_t to = GPOINTER_TO_SIZE(data);
    g_autofree char *path = tu_path("grow-truncated.cpr");
    g_autofree char *name = g_strdup_printf("%s: was truncated", path);
    const size_t first = 1 << 20, big = 24 << 20;
    g_autofree uint8_t *a = tu_pattern(first, 1);
    g_autofree uint8_t *b = tu_pattern(big, 2);
    char *err = NULL;
    CprWriter *w;

    unlink(path);
    tu_save(path, a, first);
    w = cpr_writer_open_vm(path, &(CprHost){ "test", NULL, NULL }, NULL, &err);
    g_assert_no_errno(w ? 0 : -1);
    cut_to = to;
    g_assert_cmpint(cpr_writer_append(w, b, big, &err), <, 0);
    g_assert_cmpint(cut_to, ==, -1);            /* the cut happened */
    g_test_message("cut to %lld: %s", (long long)to, err);
    if (!g_str_has_prefix(err, name)) {
        g_error("\"%s\" does not start with \"%s\"", err, name);
    }
    g_assert_null(strstr(err, "mmap"));
    free(err);
    cpr_writer_abort(w);
    cpr_writer_close(w);
    unlink(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/grow-truncated/to-zero", GSIZE_TO_POINTER(0),
                         grow_cut_to);
    /* shorter than the growth asked for, but not empty: a short map */
    g_test_add_data_func("/grow-truncated/to-4k", GSIZE_TO_POINTER(4096),
                         grow_cut_to);
    return g_test_run();
}
