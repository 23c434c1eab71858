/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "image-file.h"
#include "image-create.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
static int reopen_regular(const CprImage *f, int pfd, int flags,
                          bool via_symlink, char **errp)
{
    char proc[CPR_PROC_FD_LEN];
    struct stat st;
    int fd = -1;

    if (fstat(pfd, &st) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot stat");
    } else if (!S_ISREG(st.st_mode)) {
        cpr_image_error(f, errp, "%s%s, not a pmem CPR image",
                  via_symlink ? "is a symlink to something that " : "",
                  file_kind(st.st_mode));
    } else {
        fd = open(cpr_proc_fd(proc, pfd), flags | O_CLOEXEC);
        if (fd < 0) {
            cpr_image_error_errno(f, errp, errno, "cannot open");
        }
    }
    close(pfd);
    return fd;
}

static int lock(const CprImage *f, int how, const char *busy, char **errp)
{
    if (flock(f->fd, how | LOCK_NB) == 0) {
        return 0;
    }
    if (errno == EWOULDBLOCK) {
        cpr_image_error(f, errp, "%s", busy);
    } else {
        cpr_image_error_errno(f, errp, errno, "cannot lock");
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

static int read_header(CprImage *f, char **errp)
{
    struct stat st;

    if (cpr_image_stat(f, &st, errp) < 0) {
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cpr_image_error(f, errp, "%s, not a pmem CPR image",
                  file_kind(st.st_mode));
        return -1;
    }
    f->size = (uint64_t)st.st_size;
    /* A new image has blocks for its header only; a save allocates what
     * its stream reaches (space.c). */
    f->sparse = (uint64_t)st.st_blocks * 512 < f->size;
    if (cpr_pread_full(f->fd, f->header, sizeof(f->header), 0) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot read");
        return -1;
    }
    f->sb_state = cpr_sb_decode(f->header, CPR_BLOCK_SIZE, &f->sb);
    cpr_slots_decode(f->header, &f->slots);
    return 0;
}

/* The image object for @path, not open yet: the path is kept once. */
static int image_new(const char *path, CprImage *f, char **errp)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    if (!(f->path = strdup(path))) {
        cpr_error(errp, path, "out of memory");
        return -1;
    }
    return 0;
}

int cpr_image_open_read(const char *path, CprImage *f, char **errp)
{
    int pfd;

    if (image_new(path, f, errp) < 0) {
        return -1;
    }
    /* Only a regular file is opened at all (a device's open has effects
     * of its own); O_NONBLOCK in case it is swapped for a FIFO. */
    pfd = open(path, O_PATH | O_CLOEXEC);
    if (pfd < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot open");
        goto fail;
    }
    f->fd = reopen_regular(f, pfd, O_RDONLY | O_NONBLOCK, false, errp);
    /* A save could otherwise reuse the payload being read once two newer
     * generations exist. */
    if (f->fd < 0 ||
        lock(f, LOCK_SH, "a save to this file is in progress", errp) < 0 ||
        read_header(f, errp) < 0) {
        goto fail;
    }
    if (f->size < CPR_HEADER_SIZE) {
        cpr_image_error(f, errp, "too short (%llu bytes) to be a pmem CPR "
                        "image", (unsigned long long)f->size);
        goto fail;
    }
    return 0;
fail:
    cpr_image_close(f);
    return -1;
}

/* Open (or create) under the symlink policy; see the header.  Nothing
 * but a regular file is ever opened read-write. */
static int open_for_save(const CprImage *f, bool *via_symlink, char **errp)
{
    int pfd = open(f->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    bool lost_race;

    *via_symlink = false;
    if (pfd < 0 && errno == ENOENT) {
        int fd = cpr_image_create(f, &lost_race, errp);

        if (fd >= 0 || !lost_race) {
            return fd;
        }
        pfd = open(f->path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    /* O_PATH | O_NOFOLLOW on a symlink gives the link itself. */
    if (pfd >= 0 && fstat(pfd, &st) == 0 && S_ISLNK(st.st_mode)) {
        close(pfd);
        *via_symlink = true;
        pfd = open(f->path, O_PATH | O_CLOEXEC);
        if (pfd < 0 && errno == ENOENT) {
            cpr_image_error(f, errp, "is a symlink to a missing file; a save "
                      "never creates a file through a symlink");
            return -1;
        }
    }
    if (pfd < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot open");
        return -1;
    }
    return reopen_regular(f, pfd, O_RDWR | O_NONBLOCK, *via_symlink, errp);
}

int cpr_image_open_write(const char *path, CprImage *f, char **errp)
{
    bool via_symlink;
    const CprSlots *s = &f->slots;

    if (image_new(path, f, errp) < 0) {
        return -1;
    }
    f->fd = open_for_save(f, &via_symlink, errp);
    if (f->fd < 0 ||
        lock(f, LOCK_EX, "in use by another save or a restore", errp) < 0 ||
        read_header(f, errp) < 0) {
        goto fail;
    }
    if (f->size == 0) {
        if (via_symlink) {
            cpr_image_error(f, errp, "is a symlink to an empty file; a save "
                            "initialises only a file named directly");
            goto fail;
        }
        if (cpr_image_init(f, f->fd, errp) < 0) {
            /* Back to the empty file it was, not a foreign 12 KiB one. */
            if (ftruncate(f->fd, 0) < 0) {
                /* Nothing more to undo with. */
            }
            goto fail;
        }
        if (read_header(f, errp) < 0) {
            goto fail;
        }
    }
    switch (f->sb_state) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_image_error(f, errp, "image format version %u (superblock) is "
                        "newer than this transport (%u); refusing to "
                        "overwrite it", f->sb.version, CPR_SB_VERSION);
        goto fail;
    default:
        cpr_image_error(f, errp, "exists and is not a pmem CPR image; "
                        "refusing to overwrite it");
        goto fail;
    }
    if (s->newest >= 0 && s->state[s->newest] == CPR_DECODE_TOO_NEW) {
        cpr_image_error(f, errp, "image format version %u is newer than "
                        "this transport (%u); refusing to overwrite it",
                        s->rec[s->newest].version, CPR_REC_VERSION);
        goto fail;
    }
    cpr_image_media(f, NULL);
    return 0;
fail:
    cpr_image_close(f);
    return -1;
}

void cpr_image_close(CprImage *f)
{
    if (f->fd >= 0) {
        close(f->fd);   /* drops the lock */
    }
    f->fd = -1;
    free(f->path);
    f->path = NULL;
}

int cpr_image_stat(const CprImage *f, struct stat *st, char **errp)
{
    if (fstat(f->fd, st) < 0) {
        cpr_image_error_errno(f, errp, errno, "cannot stat");
        return -1;
    }
    return 0;
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

bool cpr_image_payload_present(const CprImage *f, const CprRecord *rec,
                               char **errp)
{
    unsigned long long gen = (unsigned long long)rec->generation;
    int64_t hole;

    if (!cpr_record_fits(rec, f->size)) {
        cpr_image_error(f, errp, "image (generation %llu) lies outside the "
                        "file (truncated?)", gen);
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
        cpr_image_error_errno(f, errp, errno, "cannot look for holes");
        return false;
    }
    if ((uint64_t)hole < rec->payload_off + rec->payload_len) {
        cpr_image_error(f, errp, "image (generation %llu) has a hole at byte "
                        "%llu of its payload (sparse or damaged file; a "
                        "sparse copy loads only from record format 3, and "
                        "this one is %u)", gen,
                        (unsigned long long)((uint64_t)hole -
                                             rec->payload_off),
                        rec->version);
        return false;
    }
    return true;
}

int cpr_image_check_intact(const CprImage *f, uint64_t size, char **errp)
{
    /* The superblock and both records: all a reader decides by. */
    uint8_t hdr[CPR_SLOT_OFFSET(CPR_NR_SLOTS - 1) + CPR_REC_SIZE];
    struct stat st;

    if (cpr_image_stat(f, &st, errp) < 0) {
        return -1;
    }
    if ((uint64_t)st.st_size < size) {
        cpr_image_error(f, errp, "was truncated by another process during "
                        "the save (%llu bytes, expected %llu)",
                        (unsigned long long)st.st_size,
                        (unsigned long long)size);
        return -1;
    }
    if (cpr_pread_full(f->fd, hdr, sizeof(hdr), 0) < 0 ||
        memcmp(hdr + CPR_SB_OFFSET, f->header + CPR_SB_OFFSET,
               CPR_SB_SIZE) != 0) {
        cpr_image_error(f, errp, "superblock changed during the save "
                        "(another process wrote to the file)");
        return -1;
    }
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        if (memcmp(hdr + CPR_SLOT_OFFSET(i), f->header + CPR_SLOT_OFFSET(i),
                   CPR_REC_SIZE) != 0) {
            cpr_image_error(f, errp, "record slot %u changed during the "
                            "save (another process wrote to the file)", i);
            return -1;
        }
    }
    return 0;
}

ssize_t cpr_image_pread(const CprImage *f, void *buf, size_t len,
                        uint64_t off)
{
    return cpr_pread_full(f->fd, buf, len, off);
}

int cpr_image_reopen_rw(const CprImage *f)
{
    char proc[CPR_PROC_FD_LEN];

    return open(cpr_proc_fd(proc, f->fd), O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

CprImage *cpr_image_reopen(const CprImage *f)
{
    CprImage *n = malloc(sizeof(*n));

    if (!n) {
        return NULL;
    }
    *n = *f;
    n->fd = cpr_image_reopen_rw(f);
    n->path = strdup(f->path);
    if (n->fd < 0 || !n->path) {
        cpr_image_free(n);
        return NULL;
    }
    return n;
}

void cpr_image_free(CprImage *f)
{
    if (f) {
        cpr_image_close(f);
        free(f);
    }
}

const char *cpr_proc_fd(char buf[CPR_PROC_FD_LEN], int fd)
{
    snprintf(buf, CPR_PROC_FD_LEN, "/proc/self/fd/%d", fd);
    return buf;
}

const char *cpr_image_path(const CprImage *f)
{
    return f->path;
}

/* The one place a message names the image: "PATH: what[: suffix]". */
static void image_error(const CprImage *f, char **errp, const char *suffix,
                        const char *fmt, va_list ap)
{
    char *what = NULL;

    if (!errp || *errp) {
        return;
    }
    if (vasprintf(&what, fmt, ap) < 0) {
        what = NULL;
    }
    if (asprintf(errp, "%s: %s%s%s", f->path ? f->path : "(null)",
                 what ? what : "error", suffix ? ": " : "",
                 suffix ? suffix : "") < 0) {
        /* Out of memory: QEMU still wants some message. */
        *errp = strdup("pmem transport: out of memory");
    }
    free(what);
}

void cpr_image_error(const CprImage *f, char **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    image_error(f, errp, NULL, fmt, ap);
    va_end(ap);
}

void cpr_image_error_errno(const CprImage *f, char **errp, int errnum,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    image_error(f, errp, strerror(errnum), fmt, ap);
    va_end(ap);
}

CprMedia cpr_image_media(CprImage *f, const char **detail)
{
    if (!f->classified) {
        f->media = cpr_media_of_file(f->fd, f->media_detail,
                                     sizeof(f->media_detail));
        f->tmpfs = cpr_media_is_tmpfs(f->media_detail);
        /* Volatile: tmpfs, ramfs, hugetlbfs; pmem: DAX; an unlinked file
         * on a disk counts as volatile too, and is not: leave it out. */
        f->populate_is_cheap = f->tmpfs || f->media == CPR_MEDIA_PMEM;
        f->classified = true;
    }
    if (detail) {
        *detail = f->media_detail;
    }
    return f->media;
}

bool cpr_image_is_tmpfs(CprImage *f)
{
    cpr_image_media(f, NULL);
    return f->tmpfs;
}

bool cpr_image_populate_is_cheap(CprImage *f)
{
    cpr_image_media(f, NULL);
    return f->populate_is_cheap;
}
