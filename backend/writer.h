/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save path: stream bytes into a new payload that never overlaps the
 * live one, then publish it with one commit record (see FORMAT.md).
 */
#ifndef CPR_WRITER_H
#define CPR_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct CprWriter CprWriter;

/*
 * Open (creating it if missing) the image at @path for a new save of @vm
 * and lock it against concurrent saves.  Refuses files that are not
 * ours, under the symlink policy of image-file.h.  @host's qemu_version
 * goes into the record (may be NULL).  @vm may be NULL: no RAM blocks, no
 * machine type, no CPU model; else records what binding.h says, and warns
 * through @host when the image or a RAM block is on volatile memory.
 */
struct CprHost;
struct CprVm;
CprWriter *cpr_writer_open_vm(const char *path, const struct CprHost *host,
                              const struct CprVm *vm, char **errp);

/*
 * Optional, right after open: do now what the first writes would do
 * otherwise (allocate room for a stream like the last one, populate its
 * first pages and the record's), so that QEMU, which opens before it
 * stops the VM, keeps that work out of the pause.
 */
int cpr_writer_populate(CprWriter *w, char **errp);

/*
 * Instead of a stream: grow the file to at least @size bytes, allocate
 * and populate all of it now (tmpfs and DAX allocate and zero a page on
 * its first touch), so that saves into it pay for neither.  Contents and
 * records are unchanged.  A first save into a new image populates all
 * of it (cpr_writer_populate).
 */
int cpr_writer_populate_size(CprWriter *w, uint64_t size, char **errp);

/* Append at the append position; returns the bytes written or -1. */
int64_t cpr_writer_appendv(CprWriter *w, const struct iovec *iov, int iovcnt,
                           char **errp);
int cpr_writer_append(CprWriter *w, const void *buf, size_t len,
                      char **errp);

/* Write at stream offset @off; the stream grows to @off + @len if shorter
 * (a gap reads back as zeros); the append position does not move. */
int64_t cpr_writer_pwritev(CprWriter *w, uint64_t off,
                           const struct iovec *iov, int iovcnt, char **errp);
int cpr_writer_pwrite(CprWriter *w, uint64_t off, const void *buf,
                      size_t len, char **errp);

/*
 * Make the stream and the VM description of @vm (its RAM as it is now:
 * the VM is stopped) durable and publish them.  At most once.
 * cpr_writer_commit() is the same without a VM (no RAM blocks).
 */
int cpr_writer_commit(CprWriter *w, char **errp);
int cpr_writer_commit_vm(CprWriter *w, const struct CprVm *vm, char **errp);

/*
 * Instead of a stream, publish a record with the INVALIDATED flag (and the
 * live record's payload fields), so the image refuses to load until the
 * next save.  Durable on return 0.  At most once, instead of a commit.
 */
int cpr_writer_invalidate(CprWriter *w, char **errp);

/* Forget the new stream (the live image is untouched either way). */
void cpr_writer_abort(CprWriter *w);

/* Unmap, unlock, close and free; without a commit this is an abort. */
void cpr_writer_close(CprWriter *w);

/*
 * A second, writable descriptor (its own open file description) for the
 * very file the writer holds, not reopened by its path, which may name
 * another file by now; -1 with errno on failure.
 */
int cpr_writer_reopen_rw(const CprWriter *w);

/* For messages, tests and tools. */
const char *cpr_writer_path(const CprWriter *w);
bool cpr_writer_is_pmem(const CprWriter *w);
uint64_t cpr_writer_generation(const CprWriter *w);   /* of the new save */
uint64_t cpr_writer_payload_offset(const CprWriter *w);

#endif
