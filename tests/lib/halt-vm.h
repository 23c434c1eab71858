/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest with no OS, for qtest-driven tests: a 64 KiB firmware that only
 * halts, RAM in a shared file.  The test owns RAM and device registers.
 */
#ifndef HARNESS_HALT_VM_H
#define HARNESS_HALT_VM_H

#include <glib.h>

/*
 * QEMU arguments (g_strfreev) for a q35 machine with @ram_size ("256M")
 * of RAM in @dir/@ram_name (share=on), TCG, and the halting firmware
 * written to @dir.
 */
GStrv halt_vm_args(const char *dir, const char *ram_name,
                   const char *ram_size);

#endif
