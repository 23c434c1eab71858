/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What survives a host reboot: the media class of an image file or of
 * the memory behind a RAM block (BINDING.md, "Media classes").
 *
 *  pmem        a file on a DAX mount mapped with MAP_SYNC (the image: a
 *              MAP_SYNC mapping works, libpmem's real is_pmem; a RAM
 *              block: QEMU's pmem=on flag), or a device DAX node
 *  page-cache  a regular file on a disk filesystem (or DAX without
 *              MAP_SYNC): survives once written back (sync)
 *  volatile    tmpfs, ramfs, hugetlbfs, memfd, anonymous memory, or a
 *              file already unlinked: a reboot loses it
 *
 * PMEM_IS_PMEM_FORCE has no say here: libpmem then flushes caches on
 * tmpfs, but tmpfs is still lost at a reboot.
 *
 * Orthogonal to the class: what the memory behind a file is.  pmem of an
 * NFIT (ACPI) region survives a power loss; pmem of an e820 region
 * (memmap=SIZE!START, driver nd_e820: plain DRAM) survives only a kexec
 * into a kernel with the same memmap=.  Such a file's detail starts with
 * CPR_MEDIA_KEXEC_ONLY.
 */
#ifndef CPR_MEDIA_H
#define CPR_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "vmdesc.h"

/* The class of the file open as @fd (an image); @detail says why. */
CprMedia cpr_media_of_file(int fd, char *detail, size_t size);

/* The class of a RAM block: @fd is its file or -1 (anonymous memory),
 * @pmem_flag whether QEMU maps it with MAP_SYNC (pmem=on). */
CprMedia cpr_media_of_ram(int fd, bool pmem_flag, char *detail,
                          size_t size);

/* The detail's prefix for a file on kexec-only (e820) pmem. */
#define CPR_MEDIA_KEXEC_ONLY "e820 pmem, kexec only"

typedef enum CprPmemRegion {
    CPR_REGION_NONE = 0,        /* not on an nd bus (or not known) */
    CPR_REGION_DURABLE,         /* NFIT and every other provider */
    CPR_REGION_KEXEC_ONLY,      /* e820: DRAM set aside by memmap= */
} CprPmemRegion;

/*
 * The nd region behind @st: a device DAX node's or block device's own
 * (st_rdev), else the block device of the file's filesystem (st_dev),
 * looked up under @sysfs ("/sys"; a fake tree in tests): the nd bus on
 * the device's sysfs path and its provider, copied to @provider.
 */
CprPmemRegion cpr_pmem_region(const struct stat *st, const char *sysfs,
                              char *provider, size_t size);

/* Whether a recorded media detail says kexec-only pmem. */
bool cpr_media_kexec_only(const char *detail);

/* Whether a detail of cpr_media_of_file() says tmpfs (where a read fault
 * maps a shared page writable: it does no dirty tracking). */
bool cpr_media_is_tmpfs(const char *detail);

/* Whether a file of class @media and @detail is memory itself (tmpfs,
 * ramfs, hugetlbfs, DAX): a read of it never waits for a device, so
 * reading it ahead gains nothing. */
bool cpr_media_in_memory(uint32_t media, const char *detail);

#endif
