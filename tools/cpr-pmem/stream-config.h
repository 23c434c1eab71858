/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration section at a migration stream's start, as QEMU 10.0
 * and 10.2 write it (migration/savevm.c, vmstate_configuration): which
 * validated capabilities the source had on.  The exec: helper learns from
 * it whether x-ignore-shared left the guest RAM files in place (then the
 * image binds them) or the stream carries all RAM (then it binds none),
 * as the transport hook lists only the blocks the stream does not carry.
 */
#ifndef CPR_STREAM_CONFIG_H
#define CPR_STREAM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the stream's start that hold the configuration section. */
#define CPR_STREAM_CONFIG_MAX 4096u

/*
 * From the first @len bytes of a stream: 1 if its configuration lists
 * x-ignore-shared, 0 if it has a configuration section that does not,
 * -1 if the bytes are no stream start with a configuration section this
 * parser knows (cut short, or another layout).
 */
int cpr_stream_ignores_shared(const uint8_t *buf, size_t len);

#endif
