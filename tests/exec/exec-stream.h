/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Synthetic QEMU migration streams for the exec: helper's tests, framed
 * as QEMU 10.0 and 10.2 frame them (savevm.c): the "QEVM" header, a
 * body, QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION, a big-endian length and the
 * JSON VM description.  The body is random bytes salted with what could
 * fool a careless check: 0x00 0x06 pairs, long printable runs, JSON.
 */
#ifndef EXEC_STREAM_H
#define EXEC_STREAM_H

#include <glib.h>

/* A complete stream with about @body_len body bytes and a VM description
 * of about @vmdesc_len bytes (at least ~60). */
GByteArray *exec_stream_new(guint32 seed, gsize body_len, gsize vmdesc_len);

/* The JSON QEMU would send as the VM description, about @len bytes. */
GString *exec_stream_vmdesc(gsize len);

/* Append QEMU_VM_EOF, QEMU_VM_VMDESCRIPTION, length and @json. */
void exec_stream_trailer(GByteArray *s, const char *json, gsize len);

#endif
