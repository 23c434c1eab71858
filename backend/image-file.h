/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An image file's life cycle, shared by the reader and the writer:
 * which files may be opened, created or initialised, locking, and the
 * header as it was read under the lock.
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
#include <sys/types.h>

#include "format.h"

typedef struct CprImageFile {
    int fd;
    uint64_t size;                      /* at open, under the lock */
    bool sparse;                        /* fewer blocks than bytes then */
    uint8_t header[CPR_HEADER_SIZE];    /* zeros past a short file's end */
    CprDecode sb_state;
    CprSuperblock sb;
    CprSlots slots;
} CprImageFile;

/*
 * Open @path read-only under a shared lock and decode its header, without
 * judging it.  Fails (with *errp) only when the file cannot be read as an
 * image at all: missing, not a regular file, shorter than the header, or
 * locked by a save.
 */
int cpr_image_open_read(const char *path, CprImageFile *f, char **errp);

/*
 * Open @path for a save under the exclusive lock, creating it (atomically,
 * with a durable superblock) if it does not exist and initialising it if
 * it is an empty regular file, both as the symlink policy allows.  Refuses
 * a file without a valid superblock, or whose superblock or newest record
 * is too new.
 */
int cpr_image_open_write(const char *path, CprImageFile *f, char **errp);

void cpr_image_close(CprImageFile *f);

/*
 * Whether the payload of @rec can be read at all: it lies inside the
 * file, and for a record of format 1 or 2 (one hash over every byte) it
 * has no holes.  From format 3 the reader hashes a hole page as zeros
 * without reading it (a sparse copy loads; a sparse claim costs no
 * reads of zeros), and the checksum decides.  Only a sparse file is
 * searched for holes, so the cost is bounded by the data the file
 * really holds.  Sets *errp to why not, naming the generation.
 */
bool cpr_image_payload_present(const CprImageFile *f, const char *path,
                               const CprRecord *rec, char **errp);

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
int cpr_image_check_intact(const CprImageFile *f, const char *path,
                           uint64_t size, char **errp);

/* Read [off, off + len) of @fd whole (retrying short reads); bytes past
 * the end of the file read as zeros.  Returns the bytes read, or -1. */
ssize_t cpr_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* The same of @f's file. */
ssize_t cpr_image_pread(const CprImageFile *f, void *buf, size_t len,
                        uint64_t off);

/* A second, writable descriptor for the very file @f holds (not its path,
 * which may name another file by now); -1 if the file is read-only. */
int cpr_image_reopen_rw(const CprImageFile *f);

#endif
