/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "tick" guest built by scripts/build-guest.sh: a Linux kernel whose
 * /init prints "tick N" (N = 1, 2, ...) on the serial port every ~150 ms.
 * N lives only in guest RAM, so an unbroken sequence across a cpr-reboot
 * cycle shows RAM and CPU state came through.
 */
#ifndef HARNESS_GUEST_H
#define HARNESS_GUEST_H

#include <glib.h>

/*
 * "kvm" or "tcg".  $CPR_ACCEL wins; otherwise probe once per process whether
 * the guest reaches its first tick under KVM (nested virt often hangs).
 */
const char *guest_accel(const char *qemu);

/*
 * QEMU arguments (NULL-terminated, g_strfreev) that boot the guest with
 * 256 MiB RAM in a shared file @ram_path and the serial port appended to
 * @serial_path, so a restored guest keeps writing into the same log.
 */
GStrv guest_args(const char *accel, const char *ram_path,
                 const char *serial_path, GError **errp);

/*
 * What guest_args_config() may vary, for tests that change the VM's
 * configuration between a save and a restore.  NULL fields keep
 * guest_args()'s choice.
 */
typedef struct GuestConfig {
    const char *ram_size;       /* -m and the backend's size=; "256M" */
    const char *machine;        /* machine type; "q35" */
    const char *smp;            /* -smp value; none by default */
    const char *ram_props;      /* appended to the memory backend's
                                 * properties, e.g. "prealloc=on" */
    gboolean no_display;        /* leave out "-display none" */
    const char *const *extra;   /* appended as they are (NULL-terminated) */
} GuestConfig;

/* guest_args() with @cfg's changes (@cfg NULL: the same as guest_args()). */
GStrv guest_args_config(const char *accel, const char *ram_path,
                        const char *serial_path, const GuestConfig *cfg,
                        GError **errp);

/* Tick numbers of the complete "tick N" lines in @serial_path, in order. */
GArray *guest_ticks(const char *serial_path);

/* Asserts that the ticks in @serial_path run 1, 2, 3, ... past the
 * @n_before there were at the save: none lost, repeated or restarted. */
void guest_assert_ticks_carry_on(const char *serial_path, guint n_before);

/* Wait until some tick >= @n appears; @last gets the newest tick seen. */
gboolean guest_wait_tick(const char *serial_path, guint n, guint timeout_ms,
                         guint *last, GError **errp);

#endif
