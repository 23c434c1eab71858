/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Binding an image to its VM (BINDING.md): what a save records about the
 * RAM it leaves in place and the command line, and the checks a restore
 * makes before QEMU loads a byte.  QEMU-free: the VM is the ABI's own
 * QemuTransportVm (the ABI header needs nothing of QEMU), read in place;
 * plugin.c checks its element sizes as QEMU passes it.
 */
#ifndef CPR_BINDING_H
#define CPR_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qemu/transport-plugin.h"

#include "format.h"
#include "metadata.h"
#include "vmdesc.h"

/* A RAM block the stream does not carry: the ABI's element itself. */
typedef QemuTransportRamBlock CprRamBlock;

/* A block node of the VM: the ABI's element itself. */
typedef QemuTransportDisk CprDisk;

/* The description records the ABI's flags as they are. */
_Static_assert(CPR_RAM_SHARED == QEMU_TRANSPORT_RAM_SHARED &&
               CPR_RAM_PMEM == QEMU_TRANSPORT_RAM_PMEM &&
               CPR_RAM_PREALLOC == QEMU_TRANSPORT_RAM_PREALLOC,
               "RAM block flags");
_Static_assert(CPR_DISK_READ_ONLY == QEMU_TRANSPORT_DISK_READ_ONLY &&
               CPR_DISK_PROTOCOL == QEMU_TRANSPORT_DISK_PROTOCOL,
               "disk flags");

/*
 * The VM a stream belongs to: QEMU's description of it, and what the ABI
 * does not carry.
 */
typedef struct CprVm {
    /* Its RAM blocks, disks, machine type and CPU model, elements at
     * least this build's size (plugin.c checks them); NULL: none, and
     * neither machine nor CPU known. */
    const QemuTransportVm *qemu;
    /* Its argument list, NUL-separated; NULL: this process's own
     * (/proc/self/cmdline).  The exec: helper passes its QEMU's. */
    const char *argv;
    size_t argv_len;
} CprVm;

static inline uint32_t cpr_vm_nr_ram(const CprVm *vm)
{
    return vm && vm->qemu ? vm->qemu->nr_ram : 0;
}

/* RAM block @i, below cpr_vm_nr_ram(@vm). */
static inline const CprRamBlock *cpr_vm_ram(const CprVm *vm, uint32_t i)
{
    return qemu_transport_vm_ram(vm->qemu, i);
}

static inline uint32_t cpr_vm_nr_disks(const CprVm *vm)
{
    return vm && vm->qemu ? vm->qemu->nr_disks : 0;
}

/* Block node @i, below cpr_vm_nr_disks(@vm). */
static inline const CprDisk *cpr_vm_disk(const CprVm *vm, uint32_t i)
{
    return qemu_transport_vm_disk(vm->qemu, i);
}

/* The resolved machine type; "" if unknown. */
static inline const char *cpr_vm_machine(const CprVm *vm)
{
    return vm && vm->qemu && vm->qemu->machine ? vm->qemu->machine : "";
}

/* The first vCPU's model; "" if unknown. */
static inline const char *cpr_vm_cpu(const CprVm *vm)
{
    return vm && vm->qemu && vm->qemu->cpu ? vm->qemu->cpu : "";
}

/*
 * A QemuTransportVm of this build's elements, for the tools and tests
 * that describe a VM themselves (the exec: helper's parent QEMU).
 */
static inline QemuTransportVm cpr_vm_abi(const CprRamBlock *ram,
                                         uint32_t nr_ram,
                                         const char *machine,
                                         const char *cpu,
                                         const CprDisk *disks,
                                         uint32_t nr_disks)
{
    return (QemuTransportVm){
        .ram = ram, .nr_ram = nr_ram, .machine = machine, .cpu = cpu,
        .ram_block_size = sizeof(CprRamBlock),
        .disks = disks, .nr_disks = nr_disks, .disk_size = sizeof(CprDisk),
    };
}

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
 * Save, at out_open: the pages of @vm's RAM that the commit will sample
 * (@d's seed picks them), to be mapped in off the pause by
 * cpr_binding_prefault_run() on another thread (warmup.c) while the VM
 * runs and the stream is written; that thread must be done with it
 * before the migration ends (RAM may go then).  Keeps no pointer to @vm
 * itself, only the blocks' addresses (and duplicates of their files'
 * descriptors), valid until the migration ends.  NULL if @vm has no
 * RAM blocks but files that are memory themselves (tmpfs, DAX:
 * cpr_media_in_memory(), whose reads wait for no device), or memory is
 * short.  cpr_binding_prefault_free() takes
 * NULL.
 */
typedef struct CprPrefault CprPrefault;
CprPrefault *cpr_binding_prefault_new(const CprVmdesc *d, const CprVm *vm);
void cpr_binding_prefault_run(void *pf);
void cpr_binding_prefault_free(void *pf);

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
