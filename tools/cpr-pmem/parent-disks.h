/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk images a QEMU has open (its /proc directory @dir): regular
 * files and block devices among its descriptors that it opened to read,
 * or to read and write, not appending, not mapped (RAM, libraries) and
 * not its -pidfile.  Every file of a backing chain is among them.
 */
#ifndef CPR_PARENT_DISKS_H
#define CPR_PARENT_DISKS_H

#include "binding.h"

#include <stddef.h>
#include <stdint.h>

/* 0 with *@out (filenames owned; free with parent_disks_free), or -1
 * with errno when the descriptor directory cannot be read. */
int parent_disks_find(int dir, const char *argv, size_t argv_len,
                      CprDisk **out, uint32_t *nr);

void parent_disks_free(CprDisk *disks, uint32_t nr);

#endif
