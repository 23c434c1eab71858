/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guests the bench saves: the tick Linux guest (tests/lib/guest.h) and
 * a qtest-driven q35 with many devices attached (virtio-net, virtio-blk,
 * four serial ports) and a halt-only firmware, so the vCPU costs nothing.
 */
#ifndef BENCH_GUEST_KINDS_H
#define BENCH_GUEST_KINDS_H

#include <glib.h>

typedef enum { GUEST_QTEST, GUEST_LINUX } GuestKind;

typedef struct {
    GuestKind kind;
    const char *ram_size;     /* "256M", "4G" */
    gboolean shared_ram;      /* RAM in a memory-backend-file (x-ignore-shared) */
    gboolean many_devices;    /* qtest guest: attach the device set */
} GuestSpec;

/* QEMU arguments (g_strfreev) for a guest living in @dir (RAM file, logs). */
GStrv guest_kind_args(const GuestSpec *g, const char *qemu, const char *dir,
                      GError **errp);

const char *guest_kind_name(GuestKind kind);

#endif
