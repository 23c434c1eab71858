/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exec: helper's own parts (docs/exec-helper.md):
 *
 *   migrate "exec:cpr-pmem save IMAGE"           stdin -> a new save
 *   migrate_incoming "exec:cpr-pmem load IMAGE"  verified image -> stdout
 *   cpr-pmem wait IMAGE                          until that save ended
 *
 * QEMU starts the helper through /bin/sh -c, its stdin and stdout are
 * pipes to QEMU, its stderr is QEMU's (so messages land in QEMU's log).
 * When QEMU closes the migration channel it closes its pipe ends and then
 * waits for the helper to exit (io/channel-command.c); it reports
 * "completed" before that, so the helper's commit happens after it.
 */
#ifndef CPR_EXEC_H
#define CPR_EXEC_H

#include <signal.h>
#include <sys/types.h>

/* The unit of stream I/O, both ways. */
#define EXEC_IO_CHUNK (1u << 20)

/* exec-host.c: a backend warning on stderr, @opaque the command name. */
void exec_warn(void *opaque, const char *msg);

/*
 * exec-input.c: block the stop signals except while waiting for input
 * (*@wait_mask: the mask to wait with), then read() stdin: -1 with *@why
 * on a stop signal or an error, 0 at the end of the stream.
 */
void exec_input_setup(sigset_t *wait_mask);
ssize_t exec_input_read(void *buf, size_t len, const sigset_t *wait_mask,
                        char **why);

#endif
