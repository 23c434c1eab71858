/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The restore path: find the newest committed image, verify all of it,
 * then serve exactly the bytes that were verified.
 *
 * The reader reads the header with pread, and a payload on a disk
 * filesystem too (pread returns a short count past a truncation); a
 * payload of more than a block on tmpfs or DAX it maps read-only, under
 * the fault guard (a truncation becomes an error, not a SIGBUS): about
 * twice the speed of pread there, for verifying and serving alike.
 * in_open hashes the payload page by page (4 KiB; a large version-3
 * payload on several threads) and keeps each page's XXH3; every page
 * served later is read again and must match its hash, so bytes another
 * process changes after the verification are refused, never handed to
 * QEMU.  A payload of one block (1 MiB) or less is served from the copy
 * open verified.
 */
#ifndef CPR_READER_H
#define CPR_READER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "image-file.h"

/* A reader keeps 8 bytes of memory per 4 KiB page of the payload. */

typedef struct CprReader CprReader;

/* Open and fully verify the image at @path; NULL with *errp on refusal. */
CprReader *cpr_reader_open(const char *path, char **errp);

/*
 * The same, calling @peek with the image and the record chosen once
 * they are, before the payload is verified (in_open starts the binding
 * check there, binding-early.h): nothing @peek reads is verified yet.
 */
typedef void (*CprReaderPeek)(const CprImage *f, const CprRecord *rec,
                              void *opaque);
CprReader *cpr_reader_open_peek(const char *path, CprReaderPeek peek,
                                void *opaque, char **errp);

/* Copy up to @len bytes of the stream (payload bytes [0, stream_len);
 * the VM description after it is not served) from the read position; 0
 * at end of stream,
 * -1 with *errp if the file changed since it was verified. */
ssize_t cpr_reader_read(CprReader *r, void *buf, size_t len, char **errp);

/* The same at stream offset @off, without moving the read position.
 * Safe to call from several threads at once, and alongside
 * cpr_reader_read() (QEMU's multifd threads and its incoming coroutine):
 * the reader holds no state that serving changes. */
ssize_t cpr_reader_pread(CprReader *r, uint64_t off, void *buf, size_t len,
                         char **errp);

const CprRecord *cpr_reader_record(const CprReader *r);
/* The VM description the image was saved with (vmdesc.h), verified and
 * decoded by open; NULL for a version-1 record (none recorded). */
struct CprVmdesc;
const struct CprVmdesc *cpr_reader_vmdesc(const CprReader *r);
/* The bytes it was decoded from, *@len of them (NULL, 0 if none). */
const uint8_t *cpr_reader_vmdesc_bytes(const CprReader *r, size_t *len);
const char *cpr_reader_path(const CprReader *r);
/* The open, locked image (for a writable reopen of the very same file). */
const CprImage *cpr_reader_file(const CprReader *r);

void cpr_reader_close(CprReader *r);
/*
 * At load, before any restore: a buffer for a payload of one block, its
 * pages faulted in now, so that a restore in a process that just started
 * reads its payload there without a page fault per page; and the hash's
 * first call made.  A save drops
 * it (cpr_reader_unprepare); the first restore takes it, and frees it.
 * Worth it only off the restore's path: the plugin calls it when QEMU
 * preloads it for an incoming migration (cpr_cmdline_preloads_incoming).
 */
void cpr_reader_prepare(void);
void cpr_reader_unprepare(void);

/*
 * For a save: whether @rec's payload in @f (open and locked by the
 * caller) would load as far as its bytes go.  True without reading
 * anything unless the payload has holes (a sparse copy, or a sparse
 * claim); then it is verified as a restore would, holes hashed as zeros,
 * at the cost of the data the file holds.  A live payload counts only
 * if this holds: a sparse claim must not make a save place its stream
 * (and allocate its room) above terabytes that are not there.
 */
bool cpr_reader_payload_verifies(const CprImage *f, const CprRecord *rec);

#endif
