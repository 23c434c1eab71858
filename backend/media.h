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
 */
#ifndef CPR_MEDIA_H
#define CPR_MEDIA_H

#include <stdbool.h>
#include <stddef.h>

#include "vmdesc.h"

/* The class of the file open as @fd (an image); @detail says why. */
CprMedia cpr_media_of_file(int fd, char *detail, size_t size);

/* The class of a RAM block: @fd is its file or -1 (anonymous memory),
 * @pmem_flag whether QEMU maps it with MAP_SYNC (pmem=on). */
CprMedia cpr_media_of_ram(int fd, bool pmem_flag, char *detail,
                          size_t size);

#endif
