/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Creating and initialising an image file (image-create.h). */
#include "image-create.h"
#include "metadata.h"
#include "placement.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header block of a new image: the superblock, then zeros. */
static int write_superblock(const CprImage *f, int fd, char **errp)
{
    CprSuperblock sb = { .version = CPR_SB_VERSION };
    static uint8_t zeros[CPR_HEADER_SIZE];
    uint8_t buf[CPR_SB_SIZE];

    if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
        cpr_image_error_errno(f, errp, errno, "cannot get random bytes");
        return -1;
    }
    sb.ctime_ns = cpr_realtime_ns();
    cpr_sb_encode(&sb, buf);
    /* Zeros first, superblock last: a torn initialisation is no image. */
    errno = ENOSPC;     /* what a short write means */
    if (pwrite(fd, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros) ||
        pwrite(fd, buf, sizeof(buf), CPR_SB_OFFSET) != (ssize_t)sizeof(buf)) {
        cpr_image_error_errno(f, errp, errno, "cannot write the superblock");
        return -1;
    }
    if (fsync(fd) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot sync");
        return -1;
    }
    return 0;
}

/*
 * cpr_image_init -- the superblock and both record slots written (so
 * allocated), and the size of the first saves set, without blocks: how
 * long the first stream is nobody knows yet, and allocating megabytes
 * here is time the VM waits for before it stops.  The save allocates
 * what its stream reaches (space.c, I5) and populates it ahead on a
 * thread (warmup.c); the sparse file says so to the writer.
 */
int cpr_image_init(const CprImage *f, int fd, char **errp)
{
    if (write_superblock(f, fd, errp) < 0) {
        return -1;
    }
    if (ftruncate(fd, (off_t)CPR_INITIAL_SIZE) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot grow to %llu bytes",
                              (unsigned long long)CPR_INITIAL_SIZE);
        return -1;
    }
    return 0;
}

static int fsync_dir(const CprImage *f, const char *dir, char **errp)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (dfd < 0 || fsync(dfd) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot sync its directory");
        ret = -1;
    }
    if (dfd >= 0) {
        close(dfd);
    }
    return ret;
}

/* The named temporary files of open_unnamed(): TMP_PREFIX + 6 chars. */
#define TMP_PREFIX ".cpr-pmem-"
#define TMP_TRIES 8

/* is_tmp_name -- exactly what mkostemp() makes of TMP_PREFIX "XXXXXX". */
static bool is_tmp_name(const char *name)
{
    size_t n = strlen(TMP_PREFIX);

    if (strncmp(name, TMP_PREFIX, n) || strlen(name) != n + 6) {
        return false;
    }
    for (const char *p = name + n; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9'))) {
            return false;
        }
    }
    return true;
}

/*
 * clean_stale_tmp -- remove the named temporary files a creation killed
 * before it finished left in @dir (without O_TMPFILE, see below).  Only
 * our own pattern, only regular files owned by this user (never through
 * a symlink: O_NOFOLLOW, unlinkat in the directory's descriptor), only
 * if no live creator holds its lock on it, and only if the name still
 * names the file checked.  Best effort: the creation goes on regardless.
 */
static void clean_stale_tmp(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int lfd = dfd >= 0 ? dup(dfd) : -1;
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    struct dirent *e;

    if (!d) {
        if (lfd >= 0) {
            close(lfd);
        }
        if (dfd >= 0) {
            close(dfd);
        }
        return;
    }
    while ((e = readdir(d))) {
        struct stat st, again;
        int fd;

        if (!is_tmp_name(e->d_name)) {
            continue;
        }
        fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                    O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, e->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
            again.st_dev == st.st_dev && again.st_ino == st.st_ino) {
            unlinkat(dfd, e->d_name, 0);
        }
        close(fd);
    }
    closedir(d);
    close(dfd);
}

/*
 * A nameless file in @dir (O_TMPFILE: nothing is left behind if we die),
 * or where the filesystem lacks that, a short hidden name that fits any
 * directory that fits PATH.  *@tmp is that name, or NULL.  The named one
 * is under our exclusive flock from the start, so that clean_stale_tmp()
 * in another creator leaves it alone; if that removed it in the moment
 * before the lock, it has no link left and another name is tried.
 */
static int open_unnamed(const char *dir, char **tmp)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    *tmp = NULL;
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
                    errno != EINVAL)) {
        return fd;
    }
    for (int i = 0; i < TMP_TRIES; i++) {
        struct stat st;

        if (asprintf(tmp, "%s/" TMP_PREFIX "XXXXXX", dir) < 0) {
            *tmp = NULL;
            errno = ENOMEM;
            return -1;
        }
        fd = mkostemp(*tmp, O_CLOEXEC);
        if (fd < 0) {
            break;
        }
        if (flock(fd, LOCK_EX) == 0 && fstat(fd, &st) == 0 &&
            st.st_nlink > 0) {
            return fd;
        }
        close(fd);
        free(*tmp);
        *tmp = NULL;
        fd = -1;
        errno = EAGAIN;
    }
    free(*tmp);
    *tmp = NULL;
    return fd;
}

int cpr_image_create(const CprImage *f, bool *lost_race, char **errp)
{
    char *copy = strdup(f->path), *dir, *tmp = NULL, proc[CPR_PROC_FD_LEN];
    int fd = -1, ret = -1;

    *lost_race = false;
    if (!copy) {
        cpr_image_error(f, errp, "out of memory");
        return -1;
    }
    dir = dirname(copy);
    clean_stale_tmp(dir);
    fd = open_unnamed(dir, &tmp);
    if (fd < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot create");
        goto out;
    }
    if (cpr_image_init(f, fd, errp) < 0) {
        goto out;
    }
    if (tmp ? link(tmp, f->path) :
        linkat(AT_FDCWD, cpr_proc_fd(proc, fd), AT_FDCWD, f->path,
               AT_SYMLINK_FOLLOW)) {
        if (errno == EEXIST) {
            *lost_race = true;
        } else {
            cpr_image_error_errno(f, errp, errno, "cannot create");
        }
        goto out;
    }
    if (fsync_dir(f, dir, errp) == 0) {
        ret = fd;
    }
out:
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    if (ret < 0 && fd >= 0) {
        close(fd);
    }
    free(copy);
    return ret;
}
