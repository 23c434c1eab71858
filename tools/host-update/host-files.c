/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update's file operations under a directory descriptor
 * (host-files.h; the rules: docs/threat-model.md).
 */
#include "host-files.h"
#include "write-all.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many unique names a temporary file tries before giving up. */
#define TMP_TRIES 100

static void set_errno_error(GError **errp, const char *path, int e,
                            const char *what)
{
    g_set_error(errp, G_IO_ERROR, g_io_error_from_errno(e), "%s: %s%s%s",
                path, what ? what : "", what ? ": " : "", g_strerror(e));
}

/*
 * open_dir -- the directory of @path, not through a symlink in its last
 * component; *@base is @path's last component.  -1 with errno.
 */
static int open_dir(const char *path, char **base)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    *base = dfd >= 0 ? g_path_get_basename(path) : NULL;
    return dfd;
}

/* dir_error -- why open_dir() failed, for *@errp. */
static void dir_error(GError **errp, const char *path)
{
    set_errno_error(errp, path, errno, errno == ELOOP
                    ? "its directory is a symlink (name the real one)"
                    : "cannot open its directory");
}

/*
 * create_tmp -- a new 0600 regular file of a unique, unpredictable name
 * beside @base in @dfd (O_EXCL: nothing planted there is opened).
 * Sets *@name; -1 with errno.
 */
static int create_tmp(int dfd, const char *base, char **name)
{
    for (int i = 0; i < TMP_TRIES; i++) {
        int fd;

        *name = g_strdup_printf(".%s.%08x%08x.tmp", base, g_random_int(),
                                g_random_int());
        fd = openat(dfd, *name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                    O_CLOEXEC, 0600);
        if (fd >= 0) {
            /* The umask may only have taken bits away; make it exact. */
            if (fchmod(fd, 0600) == 0) {
                return fd;
            }
            int e = errno;

            close(fd);
            unlinkat(dfd, *name, 0);
            errno = e;
        }
        g_free(*name);
        *name = NULL;
        if (errno != EEXIST) {
            return -1;
        }
    }
    errno = EEXIST;
    return -1;
}

gboolean host_write_durably(const char *path, const char *text,
                            GError **errp)
{
    g_autofree char *base = NULL, *tmp = NULL;
    int dfd = open_dir(path, &base);
    int fd = -1, e;
    const char *what = NULL;

    if (dfd < 0) {
        dir_error(errp, path);
        return FALSE;
    }
    fd = create_tmp(dfd, base, &tmp);
    if (fd < 0) {
        what = "cannot create a temporary file beside it";
        goto fail;
    }
    if (tool_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        what = "cannot write";
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        what = "cannot write";
        goto fail;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, base) < 0) {
        what = "cannot rename the temporary file";
        goto fail;
    }
    g_clear_pointer(&tmp, g_free);
    if (fsync(dfd) < 0) {
        what = "cannot sync its directory";
        goto fail;
    }
    close(dfd);
    return TRUE;
fail:
    e = errno;
    if (fd >= 0) {
        close(fd);
    }
    if (tmp) {
        unlinkat(dfd, tmp, 0);
    }
    close(dfd);
    set_errno_error(errp, path, e, what);
    return FALSE;
}

/* dir_trusted -- nobody but this user (or root) can change @ds's names. */
static gboolean dir_trusted(const struct stat *ds, const char *path,
                            GError **errp)
{
    uid_t me = geteuid();

    if ((ds->st_uid != me && ds->st_uid != 0) ||
        ((ds->st_mode & (S_IWGRP | S_IWOTH)) && !(ds->st_mode & S_ISVTX))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "%s: its directory (uid %u, mode %04o) lets others "
                    "replace it (only its owner or root may write there)",
                    path,
                    (unsigned)ds->st_uid, (unsigned)(ds->st_mode & 07777));
        return FALSE;
    }
    return TRUE;
}

gboolean host_dir_trusted(const char *path, GError **errp)
{
    g_autofree char *base = NULL;
    int dfd = open_dir(path, &base);
    struct stat ds;
    gboolean ok;

    if (dfd < 0 || fstat(dfd, &ds) < 0) {
        dir_error(errp, path);
        if (dfd >= 0) {
            close(dfd);
        }
        return FALSE;
    }
    ok = dir_trusted(&ds, path, errp);
    close(dfd);
    return ok;
}

char *host_read_trusted(const char *path, gsize *len, GError **errp)
{
    g_autofree char *base = NULL;
    g_autofree char *data = NULL;
    int dfd = open_dir(path, &base);
    int fd = -1;
    struct stat ds, fs;
    uid_t me = geteuid();
    gsize got = 0;

    if (dfd < 0) {
        dir_error(errp, path);
        return NULL;
    }
    fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_errno_error(errp, path, errno,
                        errno == ELOOP ? "is a symlink" : NULL);
        goto out;
    }
    if (fstat(dfd, &ds) < 0 || fstat(fd, &fs) < 0) {
        set_errno_error(errp, path, errno, NULL);
        goto out;
    }
    if (!S_ISREG(fs.st_mode)) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s: not a regular file", path);
        goto out;
    }
    /* Whoever can change the manifest chooses what root runs. */
    if (fs.st_uid != me || (fs.st_mode & (S_IWGRP | S_IWOTH))) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "%s: owned by uid %u, mode %04o: only its owner (uid %u) "
                    "may write it; refusing to run what it says", path,
                    (unsigned)fs.st_uid, (unsigned)(fs.st_mode & 07777),
                    (unsigned)me);
        goto out;
    }
    if (!dir_trusted(&ds, path, errp)) {
        goto out;
    }
    if ((guint64)fs.st_size > HOST_MANIFEST_MAX) {
        g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "%s: %lld bytes, more than a manifest holds (%u)", path,
                    (long long)fs.st_size, HOST_MANIFEST_MAX);
        goto out;
    }
    data = g_malloc(HOST_MANIFEST_MAX + 1);
    for (;;) {
        ssize_t n = read(fd, data + got, HOST_MANIFEST_MAX + 1 - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            set_errno_error(errp, path, errno, "cannot read");
            g_clear_pointer(&data, g_free);
            goto out;
        }
        if (n == 0) {
            break;
        }
        got += (gsize)n;
        if (got > HOST_MANIFEST_MAX) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "%s: grew past %u bytes while read", path,
                        HOST_MANIFEST_MAX);
            g_clear_pointer(&data, g_free);
            goto out;
        }
    }
    data[got] = '\0';
    *len = got;
out:
    if (fd >= 0) {
        close(fd);
    }
    close(dfd);
    return g_steal_pointer(&data);
}

gboolean host_rename(const char *path, const char *to, GError **errp)
{
    g_autofree char *base = NULL, *to_base = g_path_get_basename(to);
    int dfd = open_dir(path, &base);
    int ret;

    if (dfd < 0) {
        dir_error(errp, path);
        return FALSE;
    }
    ret = renameat(dfd, base, dfd, to_base);
    if (ret < 0 || fsync(dfd) < 0) {
        set_errno_error(errp, path, errno, "cannot rename");
        close(dfd);
        return FALSE;
    }
    close(dfd);
    return TRUE;
}

int host_unlink_type(const char *path, mode_t type)
{
    g_autofree char *base = NULL;
    int dfd = open_dir(path, &base);
    struct stat st;
    int ret = -1;

    if (dfd < 0) {
        return -1;
    }
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if ((st.st_mode & S_IFMT) != type) {
            errno = EPERM;
        } else {
            ret = unlinkat(dfd, base, 0);
        }
    }
    int e = errno;

    close(dfd);
    errno = e;
    return ret;
}

int host_open_log(const char *path)
{
    struct stat st;
    int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
                         O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600)
                  : -1;

    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        fprintf(stderr, "cpr-host-update: %s: not a regular file; QEMU's "
                "output goes to /dev/null\n", path);
        close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        /* QEMU's stdout: blocking, as it would have it. */
        fcntl(fd, F_SETFL, O_APPEND);
    }
    return fd >= 0 ? fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
}
