/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "image-file.h"
#include "errmsg.h"
#include "metadata.h"
#include "placement.h"

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
    memset(f, 0, sizeof(*f));
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    f->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
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

/*
 * A nameless file in @dir (O_TMPFILE: nothing is left behind if we die),
 * or where the filesystem lacks that, a short hidden name that fits any
 * directory that fits PATH.  *@tmp is that name, or NULL.
 */
static int open_unnamed(const char *dir, char **tmp)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    *tmp = NULL;
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR &&
                    errno != EINVAL)) {
        return fd;
    }
    if (asprintf(tmp, "%s/.cpr-pmem-XXXXXX", dir) < 0) {
        *tmp = NULL;
        errno = ENOMEM;
        return -1;
    }
    fd = mkostemp(*tmp, O_CLOEXEC);
    if (fd < 0) {
        free(*tmp);
        *tmp = NULL;
    }
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

/* Open (or create) under the symlink policy; see the header. */
static int open_for_save(const char *path, bool *via_symlink, char **errp)
{
    const int flags = O_RDWR | O_NONBLOCK | O_CLOEXEC;
    int fd = open(path, flags | O_NOFOLLOW);
    bool lost_race;

    *via_symlink = false;
    if (fd < 0 && errno == ENOENT) {
        fd = create_image(path, &lost_race, errp);
        if (fd >= 0 || !lost_race) {
            return fd;
        }
        fd = open(path, flags | O_NOFOLLOW);
    }
    if (fd < 0 && errno == ELOOP) {
        *via_symlink = true;
        fd = open(path, flags);
        if (fd < 0 && errno == ENOENT) {
            cpr_error(errp, path, "is a symlink to a missing file; a save "
                      "never creates a file through a symlink");
            return -1;
        }
    }
    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
    }
    return fd;
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
    if (!f->sparse) {
        return true;
    }
    hole = cpr_image_find_hole(f->fd, rec->payload_off, rec->payload_len);
    if (hole < 0) {
        cpr_error_errno(errp, path, errno, "cannot look for holes");
        return false;
    }
    if ((uint64_t)hole < rec->payload_off + rec->payload_len) {
        cpr_error(errp, path, "image (generation %llu) has a hole at byte "
                  "%llu of its payload (sparse or damaged file)", gen,
                  (unsigned long long)((uint64_t)hole - rec->payload_off));
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
