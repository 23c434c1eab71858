/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "image-file.h"
#include "errmsg.h"
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

static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "is a directory";
    case S_IFIFO: return "is a FIFO";
    case S_IFCHR: return "is a character device";
    case S_IFBLK: return "is a block device";
    case S_IFSOCK: return "is a socket";
    default: return "is not a regular file";
    }
}

/*
 * The file @pfd (an O_PATH descriptor: opening that opens no device and
 * waits for no FIFO) reopened with @flags, if it is a regular file; else
 * an error saying what it is.  Takes @pfd.  The reopening goes through
 * the descriptor, not the path: it is the very file whose type was
 * checked, whatever the path names by now.
 */
static int reopen_regular(int pfd, int flags, const char *path,
                          bool via_symlink, char **errp)
{
    char proc[64];
    struct stat st;
    int fd = -1;

    if (fstat(pfd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
    } else if (!S_ISREG(st.st_mode)) {
        cpr_error(errp, path, "%s%s, not a pmem CPR image",
                  via_symlink ? "is a symlink to something that " : "",
                  file_kind(st.st_mode));
    } else {
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
        fd = open(proc, flags | O_CLOEXEC);
        if (fd < 0) {
            cpr_error_errno(errp, path, errno, "cannot open");
        }
    }
    close(pfd);
    return fd;
}

static int lock(int fd, const char *path, int how, const char *busy,
                char **errp)
{
    if (flock(fd, how | LOCK_NB) == 0) {
        return 0;
    }
    if (errno == EWOULDBLOCK) {
        cpr_error(errp, path, "%s", busy);
    } else {
        cpr_error_errno(errp, path, errno, "cannot lock");
    }
    return -1;
}

ssize_t cpr_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, len - done,
                          (off_t)(off + done));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    memset((uint8_t *)buf + done, 0, len - done);
    return (ssize_t)done;
}

static int read_header(CprImageFile *f, const char *path, char **errp)
{
    struct stat st;

    if (fstat(f->fd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cpr_error(errp, path, "%s, not a pmem CPR image",
                  file_kind(st.st_mode));
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    /* Files the writer made are allocated throughout (fallocate). */
    f->sparse = (uint64_t)st.st_blocks * 512 < f->size;
    if (cpr_pread_full(f->fd, f->header, sizeof(f->header), 0) < 0) {
        cpr_error_errno(errp, path, errno, "cannot read");
        return -1;
    }
    f->sb_state = cpr_sb_decode(f->header, CPR_BLOCK_SIZE, &f->sb);
    cpr_slots_decode(f->header, &f->slots);
    return 0;
}

int cpr_image_open_read(const char *path, CprImageFile *f, char **errp)
{
    int pfd;

    memset(f, 0, sizeof(*f));
    /* Only a regular file is opened at all (a device's open has effects
     * of its own); O_NONBLOCK in case it is swapped for a FIFO. */
    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
        f->fd = -1;
        return -1;
    }
    f->fd = reopen_regular(pfd, O_RDONLY | O_NONBLOCK, path, false, errp);
    if (f->fd < 0) {
        return -1;
    }
    /* A save could otherwise reuse the payload being read once two newer
     * generations exist. */
    if (lock(f->fd, path, LOCK_SH, "a save to this file is in progress",
             errp) < 0 ||
        read_header(f, path, errp) < 0) {
        goto fail;
    }
    if (f->size < CPR_HEADER_SIZE) {
        cpr_error(errp, path, "too short (%llu bytes) to be a pmem CPR image",
                  (unsigned long long)f->size);
        goto fail;
    }
    return 0;
fail:
    cpr_image_close(f);
    return -1;
}

/* The header block of a new image: the superblock, then zeros. */
static int write_superblock(int fd, const char *path, char **errp)
{
    CprSuperblock sb = { .version = CPR_SB_VERSION };
    static uint8_t zeros[CPR_HEADER_SIZE];
    uint8_t buf[CPR_SB_SIZE];

    if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
        cpr_error_errno(errp, path, errno, "cannot get random bytes");
        return -1;
    }
    sb.ctime_ns = cpr_realtime_ns();
    cpr_sb_encode(&sb, buf);
    /* Zeros first, superblock last: a torn initialisation is no image. */
    errno = ENOSPC;     /* what a short write means */
    if (pwrite(fd, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros) ||
        pwrite(fd, buf, sizeof(buf), CPR_SB_OFFSET) != (ssize_t)sizeof(buf)) {
        cpr_error_errno(errp, path, errno, "cannot write the superblock");
        return -1;
    }
    if (fsync(fd) < 0) {
        cpr_error_errno(errp, path, errno, "cannot sync");
        return -1;
    }
    return 0;
}

/* A new image: the superblock, and room for its first saves. */
static int init_image(int fd, const char *path, char **errp)
{
    int err;

    if (write_superblock(fd, path, errp) < 0) {
        return -1;
    }
    err = posix_fallocate(fd, 0, CPR_INITIAL_SIZE);
    if (err) {
        cpr_error_errno(errp, path, err, "cannot grow to %llu bytes",
                        (unsigned long long)CPR_INITIAL_SIZE);
        return -1;
    }
    return 0;
}

static int fsync_dir(const char *dir, const char *path, char **errp)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (dfd < 0 || fsync(dfd) < 0) {
        cpr_error_errno(errp, path, errno, "cannot sync its directory");
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

/*
 * Build a new image off to the side and link it at @path, so that a crash
 * never leaves a half-initialised file there (which every later save
 * would have to refuse as "not ours").  link() never replaces anything:
 * if @path appeared meanwhile, *@lost_race is set and the caller opens
 * that file under the normal policy.  Returns the new file's descriptor.
 */
static int create_image(const char *path, bool *lost_race, char **errp)
{
    char *copy = strdup(path), *dir, *tmp = NULL, proc[64];
    int fd = -1, ret = -1;

    *lost_race = false;
    if (!copy) {
        cpr_error(errp, path, "out of memory");
        return -1;
    }
    dir = dirname(copy);
    clean_stale_tmp(dir);
    fd = open_unnamed(dir, &tmp);
    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot create");
        goto out;
    }
    if (init_image(fd, path, errp) < 0) {
        goto out;
    }
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (tmp ? link(tmp, path) : linkat(AT_FDCWD, proc, AT_FDCWD, path,
                                       AT_SYMLINK_FOLLOW)) {
        if (errno == EEXIST) {
            *lost_race = true;
        } else {
            cpr_error_errno(errp, path, errno, "cannot create");
        }
        goto out;
    }
    if (fsync_dir(dir, path, errp) == 0) {
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

/* Open (or create) under the symlink policy; see the header.  Nothing
 * but a regular file is ever opened read-write. */
static int open_for_save(const char *path, bool *via_symlink, char **errp)
{
    int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    bool lost_race;

    *via_symlink = false;
    if (pfd < 0 && errno == ENOENT) {
        int fd = create_image(path, &lost_race, errp);

        if (fd >= 0 || !lost_race) {
            return fd;
        }
        pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    /* O_PATH | O_NOFOLLOW on a symlink gives the link itself. */
    if (pfd >= 0 && fstat(pfd, &st) == 0 && S_ISLNK(st.st_mode)) {
        close(pfd);
        *via_symlink = true;
        pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0 && errno == ENOENT) {
            cpr_error(errp, path, "is a symlink to a missing file; a save "
                      "never creates a file through a symlink");
            return -1;
        }
    }
    if (pfd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
        return -1;
    }
    return reopen_regular(pfd, O_RDWR | O_NONBLOCK, path, *via_symlink,
                          errp);
}

int cpr_image_open_write(const char *path, CprImageFile *f, char **errp)
{
    bool via_symlink;
    const CprSlots *s = &f->slots;

    memset(f, 0, sizeof(*f));
    f->fd = open_for_save(path, &via_symlink, errp);
    if (f->fd < 0 ||
        lock(f->fd, path, LOCK_EX, "in use by another save or a restore",
             errp) < 0 ||
        read_header(f, path, errp) < 0) {
        goto fail;
    }
    if (f->size == 0) {
        if (via_symlink) {
            cpr_error(errp, path, "is a symlink to an empty file; a save "
                      "initialises only a file named directly");
            goto fail;
        }
        if (init_image(f->fd, path, errp) < 0) {
            /* Back to the empty file it was, not a foreign 12 KiB one. */
            if (ftruncate(f->fd, 0) < 0) {
                /* Nothing more to undo with. */
            }
            goto fail;
        }
        if (read_header(f, path, errp) < 0) {
            goto fail;
        }
    }
    switch (f->sb_state) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_error(errp, path, "image format version %u (superblock) is "
                  "newer than this transport (%u); refusing to overwrite it",
                  f->sb.version, CPR_SB_VERSION);
        goto fail;
    default:
        cpr_error(errp, path, "exists and is not a pmem CPR image; "
                  "refusing to overwrite it");
        goto fail;
    }
    if (s->newest >= 0 && s->state[s->newest] == CPR_DECODE_TOO_NEW) {
        cpr_error(errp, path, "image format version %u is newer than this "
                  "transport (%u); refusing to overwrite it",
                  s->rec[s->newest].version, CPR_REC_VERSION);
        goto fail;
    }
    return 0;
fail:
    cpr_image_close(f);
    return -1;
}

void cpr_image_close(CprImageFile *f)
{
    if (f->fd >= 0) {
        close(f->fd);   /* drops the lock */
    }
    f->fd = -1;
}

int64_t cpr_image_find_hole(int fd, uint64_t off, uint64_t len)
{
    off_t hole;

    if (len == 0) {
        return (int64_t)off;
    }
    hole = lseek(fd, (off_t)off, SEEK_HOLE);
    if (hole < 0) {
        /* ENXIO: @off is at or past the end, all of the range is gone. */
        return errno == ENXIO ? (int64_t)off : -1;
    }
    return (uint64_t)hole < off + len ? (int64_t)hole : (int64_t)(off + len);
}

bool cpr_image_payload_present(const CprImageFile *f, const char *path,
                               const CprRecord *rec, char **errp)
{
    unsigned long long gen = (unsigned long long)rec->generation;
    int64_t hole;

    if (!cpr_record_fits(rec, f->size)) {
        cpr_error(errp, path, "image (generation %llu) lies outside the file "
                  "(truncated?)", gen);
        return false;
    }
    /* From version 3 the reader hashes a hole as zeros without reading
     * it, page by page; versions 1 and 2 hash the payload as one stream,
     * so they would have to hash every byte of a hole. */
    if (!f->sparse || rec->version >= 3) {
        return true;
    }
    hole = cpr_image_find_hole(f->fd, rec->payload_off, rec->payload_len);
    if (hole < 0) {
        cpr_error_errno(errp, path, errno, "cannot look for holes");
        return false;
    }
    if ((uint64_t)hole < rec->payload_off + rec->payload_len) {
        cpr_error(errp, path, "image (generation %llu) has a hole at byte "
                  "%llu of its payload (sparse or damaged file; a sparse "
                  "copy loads only from record format 3, and this one is "
                  "%u)", gen,
                  (unsigned long long)((uint64_t)hole - rec->payload_off),
                  rec->version);
        return false;
    }
    return true;
}

int cpr_image_check_intact(const CprImageFile *f, const char *path,
                           uint64_t size, char **errp)
{
    /* The superblock and both records: all a reader decides by. */
    uint8_t hdr[CPR_SLOT_OFFSET(CPR_NR_SLOTS - 1) + CPR_REC_SIZE];
    struct stat st;

    if (fstat(f->fd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
        return -1;
    }
    if ((uint64_t)st.st_size < size) {
        cpr_error(errp, path, "was truncated by another process during the "
                  "save (%llu bytes, expected %llu)",
                  (unsigned long long)st.st_size, (unsigned long long)size);
        return -1;
    }
    if (cpr_pread_full(f->fd, hdr, sizeof(hdr), 0) < 0 ||
        memcmp(hdr + CPR_SB_OFFSET, f->header + CPR_SB_OFFSET,
               CPR_SB_SIZE) != 0) {
        cpr_error(errp, path, "superblock changed during the save (another "
                  "process wrote to the file)");
        return -1;
    }
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        if (memcmp(hdr + CPR_SLOT_OFFSET(i), f->header + CPR_SLOT_OFFSET(i),
                   CPR_REC_SIZE) != 0) {
            cpr_error(errp, path, "record slot %u changed during the save "
                      "(another process wrote to the file)", i);
            return -1;
        }
    }
    return 0;
}

ssize_t cpr_image_pread(const CprImageFile *f, void *buf, size_t len,
                        uint64_t off)
{
    return cpr_pread_full(f->fd, buf, len, off);
}

int cpr_image_reopen_rw(const CprImageFile *f)
{
    char proc[64];

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", f->fd);
    return open(proc, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}
