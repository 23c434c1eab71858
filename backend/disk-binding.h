/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Binding an image to the guest's disks (BINDING.md, "Disks"): what a
 * save records about each file behind the VM's block nodes, and how a
 * restore tells that a disk changed between the save and the restore.
 */
#ifndef CPR_DISK_BINDING_H
#define CPR_DISK_BINDING_H

#include <stdint.h>

#include "binding.h"
#include "binding-internal.h"
#include "vmdesc.h"

struct CprImage;

/* Whether a node of @driver opens a local file or device we can stat. */
bool cpr_disk_is_file(const char *driver);

/*
 * Save, at out_open (the VM still runs): read the blocks the commit will
 * sample in each of @vm's disk files as they are now, so that the pause
 * reads them from the page cache, not from the disk.  Best effort.
 */
void cpr_disk_prefetch(const CprVmdesc *d, const CprVm *vm);

/*
 * Save, at out_commit (QEMU has flushed and inactivated the images):
 * record each protocol node of @vm into @d, a file's identity, size,
 * times and sampled blocks, once per file; a node that is not a file
 * (or cannot be opened) is recorded by name only, with a warning
 * through @host, naming the image @img.  -1 only when out of memory
 * (*errp set).
 */
int cpr_disk_record(CprVmdesc *d, const CprVm *vm, const CprHost *host,
                    const struct CprImage *img, char **errp);

/*
 * Restore, before QEMU loads a byte: one line in @l per difference
 * between the recorded disks and the files now (and @vm's disks the
 * image does not have); one warning through @host for disks that cannot
 * be checked.
 */
void cpr_disk_check(CprLines *l, const CprVmdesc *d, const CprVm *vm,
                    const CprHost *host);

#endif
