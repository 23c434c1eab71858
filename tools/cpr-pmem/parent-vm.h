/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM of the QEMU that runs the exec: helper (docs/exec-helper.md):
 * found through /proc, described as the transport hook would describe
 * it (binding.h's CprVm), so that `save` records and `load` checks the
 * same binding as the pmem: transport.
 */
#ifndef CPR_PARENT_VM_H
#define CPR_PARENT_VM_H

#include "binding.h"

#include <sys/types.h>

typedef struct ParentVm {
    pid_t pid;                  /* the QEMU process */
    char *exe;                  /* its binary (readlink of /proc/PID/exe) */
    char *argv;                 /* its argument list, NUL-separated */
    size_t argv_len;
    CprRamBlock *ram;           /* names owned; fds open read-only */
    uint32_t nr_ram;
    CprDisk *disks;             /* its open disk images (parent-disks.h) */
    uint32_t nr_disks;
    QemuTransportVm qemu;       /* the above, as QEMU's hook passes them */
    CprVm vm;                   /* that, and the argument list */
} ParentVm;

/*
 * Find the QEMU above this process (its parent, or the parent of an
 * intermediate shell: QEMU runs exec: commands with /bin/sh -c) and
 * describe its VM: the argument list, and for every memory-backend-file
 * with share=on and a named file, the file QEMU maps (matched through
 * /proc/PID/maps, opened read-only, never written), named by the
 * backend's id as QEMU names its RAM block.  1: found; 0: not run by a
 * QEMU (*@pv empty); -1: run by a QEMU whose VM cannot be described
 * (*@errp says why).
 */
int parent_vm_find(ParentVm *pv, char **errp);

void parent_vm_free(ParentVm *pv);

/*
 * Whether @argv (a recorded argument list) is a QEMU's, as opposed to
 * the helper's own, which an exec: save recorded when no QEMU ran it
 * (and before the helper learnt to find its QEMU).
 */
bool parent_vm_argv_is_qemu(const char *argv, size_t len);

#endif
