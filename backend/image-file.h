/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image: one open image file, shared by the reader, the writer, the
 * populator and the after-restore thread.  It owns the descriptor, the
 * lock, the path (kept once, for messages only: cpr_image_error()), the
 * header as it was read under the lock, and the media class (classified
 * once per open, on first use).  The mapping (persist.h) refers to its
 * image for its descriptor, its messages and its media.
 *
 * Its life cycle: which files may be opened, created or initialised,
 * and locking.
 *
 * Symlink policy.  A restore (and every inspection) follows symlinks: it
 * only reads.  A save follows a symlink in the last path component only
 * to an existing, valid image: it never creates a file through a symlink
 * (a dangling one is refused), never initialises an empty file reached
 * through one, and never grows or writes a file whose superblock is not
 * valid.  So no path, however it was planted, makes a save create, grow
 * or initialise a file that is not a pmem image.  Nothing but a regular
 * file is opened at all: the path is looked at with O_PATH, its type
 * checked on that descriptor, and only then the file reopened.
 *
 * Locks (flock): a save holds an exclusive lock from open to commit, a
 * restore a shared one from open to close; neither waits.
 */
#ifndef CPR_IMAGE_FILE_H
#define CPR_IMAGE_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "errmsg.h"
#include "format.h"
#include "media.h"

typedef struct CprImage {
    int fd;
    char *path;                         /* for messages only */
    uint64_t size;                      /* at open, under the lock */
    bool sparse;                        /* fewer blocks than bytes then */
    uint8_t header[CPR_HEADER_SIZE];    /* zeros past a short file's end */
    CprDecode sb_state;
    CprSuperblock sb;
    CprSlots slots;
    /* cpr_image_media(): classified on first use, once per open (a
     * save's open classifies at once: the warm-up and the binding ask). */
    bool classified;
    bool tmpfs;                         /* a read fault maps writable */
    bool populate_is_cheap;             /* cpr_image_populate_is_cheap() */
    CprMedia media;
    char media_detail[CPR_VMDESC_MAX_DETAIL];
} CprImage;

/*
 * Open @path read-only under a shared lock and decode its header, without
 * judging it.  Fails (with *errp) only when the file cannot be read as an
 * image at all: missing, not a regular file, shorter than the header, or
 * locked by a save.
 */
int cpr_image_open_read(const char *path, CprImage *f, char **errp);

/*
 * Open @path for a save under the exclusive lock, creating it (atomically,
 * with a durable superblock) if it does not exist and initialising it if
 * it is an empty regular file, both as the symlink policy allows.  Refuses
 * a file without a valid superblock, or whose superblock or newest record
 * is too new.
 */
int cpr_image_open_write(const char *path, CprImage *f, char **errp);
/* (Its media class is known when it returns: f->tmpfs and
 * f->populate_is_cheap may be read directly.) */

/* Close (dropping the lock) and forget the path. */
void cpr_image_close(CprImage *f);

/*
 * A second image object for the very file @f holds (not its path, which
 * may name another file by now), open read-write and not locked, with
 * @f's header and media class: for the thread that prepares the next
 * save after a restore.  NULL if the file cannot be reopened.
 */
CprImage *cpr_image_reopen(const CprImage *f);
void cpr_image_free(CprImage *f);

/* *errp = "PATH: <fmt...>" unless errp is NULL or already set; the
 * _errno form appends ": strerror(errnum)". */
void cpr_image_error(const CprImage *f, char **errp, const char *fmt, ...)
    CPR_PRINTF(3, 4);
void cpr_image_error_errno(const CprImage *f, char **errp, int errnum,
                           const char *fmt, ...) CPR_PRINTF(4, 5);

/* The path, for messages that are not errors (warnings). */
const char *cpr_image_path(const CprImage *f);

/*
 * The media class of the file (media.h), classified on the first call
 * and kept: a save classifies its image once, whoever asks.  @detail,
 * if not NULL, gets what it says why.
 */
CprMedia cpr_image_media(CprImage *f, const char **detail);

/* Whether populating the mapping only fills page tables (tmpfs, DAX),
 * rather than reading from a device what the stores will overwrite;
 * and whether a read fault maps a page writable (tmpfs). */
bool cpr_image_populate_is_cheap(CprImage *f);
bool cpr_image_is_tmpfs(CprImage *f);

/*
 * Whether the payload of @rec can be read at all: it lies inside the
 * file, and for a record of format 1 or 2 (one hash over every byte) it
 * has no holes.  From format 3 the reader hashes a hole page as zeros
 * without reading it (a sparse copy loads; a sparse claim costs no
 * reads of zeros), and the checksum decides.  Only a sparse file is
 * searched for holes, so the cost is bounded by the data the file
 * really holds.  Sets *errp to why not, naming the generation.
 */
bool cpr_image_payload_present(const CprImage *f, const CprRecord *rec,
                               char **errp);

/* cpr_image_stat -- fstat() of the image's descriptor; -1 with a message
 * that names the file */
int cpr_image_stat(const CprImage *f, struct stat *st, char **errp);

/*
 * Offset of the first hole in [off, off + len) of @fd, or off + len if
 * there is none (or the filesystem cannot tell); -1 on error.  Costs a
 * walk over the data from @off to the first hole, wherever that is.
 */
int64_t cpr_image_find_hole(int fd, uint64_t off, uint64_t len);

/*
 * For a save about to commit: the file is at least @size bytes long
 * (nobody truncated it), and its superblock and both record slots hold
 * what they held at open (nobody rewrote them, or copied another image
 * over the file).  The writer's own stores into the slot it publishes
 * into put back the bytes read at open (settle_slot), so any difference
 * is another process's.
 */
int cpr_image_check_intact(const CprImage *f, uint64_t size, char **errp);

/* Read [off, off + len) of @fd whole (retrying short reads); bytes past
 * the end of the file read as zeros.  Returns the bytes read, or -1. */
ssize_t cpr_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* The same of @f's file. */
ssize_t cpr_image_pread(const CprImage *f, void *buf, size_t len,
                        uint64_t off);

/* A second, writable descriptor for the very file @f holds (not its path,
 * which may name another file by now); -1 if the file is read-only. */
int cpr_image_reopen_rw(const CprImage *f);

/* "/proc/self/fd/N" of @fd into @buf: the very file a descriptor holds,
 * for calls that take a path. */
#define CPR_PROC_FD_LEN 32
const char *cpr_proc_fd(char buf[CPR_PROC_FD_LEN], int fd);

#endif
