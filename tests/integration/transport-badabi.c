/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A transport built for an ABI version no QEMU speaks: QEMU must refuse
 * to use it, with a message, and keep running.
 */
#include "qemu/transport-plugin.h"

#include <stddef.h>

/* far above any version QEMU speaks; the test looks for the number */
const uint32_t qemu_transport_plugin_version = 99;

const QemuTransportOps *
qemu_transport_plugin_init(const QemuTransportHostInfo *host, char **errp)
{
    (void)host;
    (void)errp;
    return NULL;
}
