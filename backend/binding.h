/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Binding an image to its VM (BINDING.md): what a save records about the
 * RAM it leaves in place and the command line, and the checks a restore
 * makes before QEMU loads a byte.  QEMU-free: plugin.c translates the
 * ABI's QemuTransportVm into a CprVm.
 */
#ifndef CPR_BINDING_H
#define CPR_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "metadata.h"
#include "vmdesc.h"

/* A RAM block the stream does not carry (QemuTransportRamBlock). */
typedef struct CprRamBlock {
    const char *name;
    const void *host;           /* NULL: not mapped here, read @fd */
    uint64_t size;
    int fd;                     /* -1: anonymous memory */
    uint64_t fd_offset;
    uint32_t flags;             /* CPR_RAM_* */
} CprRamBlock;

/* A block node of the VM (QemuTransportDisk). */
typedef struct CprDisk {
    const char *node_name;      /* may be NULL or "" */
    const char *filename;
    const char *driver;
    uint64_t size;
    uint32_t flags;             /* CPR_DISK_* */
} CprDisk;

/* The VM a stream belongs to (QemuTransportVm). */
typedef struct CprVm {
    const CprRamBlock *ram;
    uint32_t nr_ram;
    const char *machine;
    const char *cpu;
    /* Its argument list, NUL-separated; NULL: this process's own
     * (/proc/self/cmdline).  The exec: helper passes its QEMU's. */
    const char *argv;
    size_t argv_len;
    /* Its block nodes (BINDING.md, "Disks"). */
    const CprDisk *disks;
    uint32_t nr_disks;
} CprVm;

/* What the transport knows of QEMU. */
typedef struct CprHost {
    const char *qemu_version;
    /* One line, no newline; may be NULL (warnings are dropped). */
    void (*warn)(void *opaque, const char *msg);
    void *opaque;
} CprHost;

void cpr_warn(const CprHost *host, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The environment variable that overrides refusals (BINDING.md). */
#define CPR_ALLOW_ENV "CPR_PMEM_ALLOW"

/*
 * Save, at out_open (the VM still runs): a new description with a fresh
 * seed, @md's versions and argument list, the image's media class (of
 * @img) and every block's identity and class; warns through @host
 * when the image or a block is volatile.  NULL only when out of memory
 * or without random bytes (*errp set).  @vm may be NULL: no blocks.
 */
struct CprImage;
CprVmdesc *cpr_binding_open(const CprHost *host, const CprMetadata *md,
                            const CprVm *vm, struct CprImage *img,
                            char **errp);

/*
 * Save, at out_commit (the VM is stopped): each block's file as it is
 * now (size, mtime) and its content fingerprint, read under the fault
 * guard (a truncated RAM file is an error, not a SIGBUS).  The blocks
 * are the ones @vm lists now.  @vm NULL: none.  Then the files of @vm's
 * disks (QEMU has flushed and inactivated them); a disk that cannot be
 * checked is a warning through @host (may be NULL).
 */
int cpr_binding_commit(CprVmdesc *d, const CprHost *host, const CprVm *vm,
                       const struct CprImage *img, char **errp);

/*
 * Restore, at in_open, after the image itself was verified: compare the
 * description of @rec (@d; NULL for a version-1 record, which loads with
 * a warning) with @vm and this process's command line.  Returns 0 to go
 * on (with warnings for versions, overrides and old images), or -1 with
 * *errp naming the files and the reasons.
 */
int cpr_binding_verify(const char *image_path, const CprRecord *rec,
                       const CprVmdesc *d, const CprHost *host,
                       const CprVm *vm, char **errp);

#endif
