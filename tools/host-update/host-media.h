/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What cpr-host-update must know of the media before it touches a VM:
 * whether the reboot command is a kexec, and whether an image or the
 * guest RAM of a VM is on DRAM-backed pmem (an e820 region, memmap=),
 * which survives a kexec but not a cold reboot (backend/media.h).
 */
#ifndef CPR_HOST_MEDIA_H
#define CPR_HOST_MEDIA_H

#include <glib.h>
#include <sys/types.h>

/* Whether /bin/sh -c @cmd is a kexec: a word of it is "kexec" (kexec -e,
 * /sbin/kexec -e, systemctl kexec). */
gboolean host_cmd_is_kexec(const char *cmd);

/*
 * The first of @image (or, not made yet, its directory) and the files
 * QEMU process @pid maps shared (guest RAM) that is on kexec-only pmem,
 * described for a message (g_free); NULL when none is.
 */
char *host_kexec_only_file(pid_t pid, const char *image);

#endif
