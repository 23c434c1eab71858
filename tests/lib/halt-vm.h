/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest with no OS, for qtest-driven tests: a 64 KiB firmware that only
 * halts, RAM in a shared file.  The test owns RAM and device registers.
 */
#ifndef HARNESS_HALT_VM_H
#define HARNESS_HALT_VM_H

#include "qemu-proc.h"

/*
 * QEMU arguments (g_strfreev) for a q35 machine with @ram_size ("256M")
 * of RAM in @dir/@ram_name (share=on), TCG, and the halting firmware
 * written to @dir.
 */
GStrv halt_vm_args(const char *dir, const char *ram_name,
                   const char *ram_size);

/*
 * Start $CPR_QEMU with @args and a qtest socket in @dir, plus
 * "-incoming @incoming" unless @incoming is NULL.
 */
QemuProc *halt_vm_start(const char *dir, GStrv args, const char *name,
                        const char *incoming, GError **errp);

/*
 * halt_vm_start() with QEMU_TRANSPORT_PLUGIN_DIR pointing at a new
 * directory under @dir that holds only a copy of @plugin; *@copy gets
 * the copy's path (g_free), so a test can take it away again.
 */
QemuProc *halt_vm_start_with_plugin(const char *dir, GStrv args,
                                    const char *name, const char *incoming,
                                    const char *plugin, char **copy,
                                    GError **errp);

/* RTC CMOS byte @reg, through ports 0x70/0x71; a qtest error aborts. */
void halt_vm_cmos_write(Qtest *qt, guint8 reg, guint8 val);
guint8 halt_vm_cmos_read(Qtest *qt, guint8 reg);

#endif
