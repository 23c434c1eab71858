/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The restore path: find the newest committed image, verify all of it,
 * then serve its stream straight from a read-only mapping.
 */
#ifndef CPR_READER_H
#define CPR_READER_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

typedef struct CprReader CprReader;

/* Open and fully verify the image at @path; NULL with *errp on refusal. */
CprReader *cpr_reader_open(const char *path, char **errp);

/* Copy up to @len bytes from the read position; 0 at end of stream. */
size_t cpr_reader_read(CprReader *r, void *buf, size_t len);

/* Copy up to @len bytes from stream offset @off; 0 at or past the end. */
size_t cpr_reader_pread(const CprReader *r, uint64_t off, void *buf,
                        size_t len);

const CprRecord *cpr_reader_record(const CprReader *r);
const char *cpr_reader_path(const CprReader *r);

void cpr_reader_close(CprReader *r);

/* The header of an image as decoded, without judging it (for cpr-pmem). */
typedef struct CprImageHeader {
    uint64_t file_size;
    CprDecode sb_state;
    CprSuperblock sb;
    CprSlots slots;
} CprImageHeader;

/*
 * Decode the superblock and both slots of the image at @path with the
 * same code cpr_reader_open() uses; -1 with *errp only if the file cannot
 * be read as an image at all (missing, not regular, too short).
 */
int cpr_reader_inspect(const char *path, CprImageHeader *h, char **errp);

#endif
