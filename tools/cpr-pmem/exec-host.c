/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What save and load, run by QEMU, share: their messages go to stderr,
 * which is QEMU's log.
 */
#include "exec.h"

#include <stdio.h>

/* exec_warn -- a backend warning (CprHost.warn), @opaque the command. */
void exec_warn(void *opaque, const char *msg)
{
    fprintf(stderr, "%s: warning: %s\n", (const char *)opaque, msg);
}
