/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU command lines: this process's own, and the option-by-option
 * difference between the one a VM was saved with and the one restoring
 * it (BINDING.md, "Command line").  Argument lists are NUL-separated, as
 * in /proc/PID/cmdline: each argument followed by one NUL.
 */
#ifndef CPR_CMDLINE_H
#define CPR_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * This process's argument list (/proc/self/cmdline), at most
 * CPR_VMDESC_MAX_ARGV bytes and CPR_VMDESC_MAX_ARGS arguments (cut at an
 * argument boundary beyond that), into a new malloc()ed buffer.  Returns
 * 0, or -1 (with an empty list) if it cannot be read.
 */
int cpr_cmdline_own(char **args, size_t *len);

/*
 * Read this process's argument list now, at load, and keep it: a QEMU's
 * does not change, and a restore then does not read /proc inside
 * migrate-incoming.  cpr_cmdline_own() does it itself if not done yet.
 */
void cpr_cmdline_prepare(void);

/*
 * cpr_cmdline_incoming -- what this process's argument list says of
 * restores: *@incoming, whether it starts a destination (-incoming: QEMU
 * takes migrate-incoming only then); *@preloads, whether an
 * x-preload-transports value names @scheme (NULL: not asked).  -1 if the
 * list cannot be read.
 */
int cpr_cmdline_incoming(const char *scheme, bool *incoming, bool *preloads);

/*
 * Whether this process's argument list starts a destination (-incoming)
 * that loads the @scheme transport at start-up (an x-preload-transports
 * value naming it): then the transport loads before migrate-incoming,
 * and what it prepares at load is off the restore's path.
 */
bool cpr_cmdline_preloads_incoming(const char *scheme);

/*
 * The same for the process whose /proc/PID directory @proc_fd is open:
 * its "cmdline", read under that descriptor.
 */
int cpr_cmdline_read_at(int proc_fd, char **args, size_t *len);

/*
 * For tests only: make cpr_cmdline_own() return a copy of @args (NULL:
 * read /proc/self/cmdline again).  Not reachable through the transport
 * ABI: the module exports only the ABI's symbols.
 */
void cpr_cmdline_set_for_tests(const char *args, size_t len);

/* One difference, as shown to the operator. */
typedef struct CprCmdlineDiff {
    char **lines;       /* "+ -device virtio-rng-pci", "- -smp 2", ... */
    size_t nr;
} CprCmdlineDiff;

/*
 * Compare the saved argument list with the current one (argv[0], the
 * binary, is not compared) and the resolved machine type and CPU model
 * of each.  Options QEMU lets differ between the two ends of a
 * cpr-reboot (cpr_cmdline_ignored) are left out.  Fills @diff (empty:
 * no difference that matters); returns -1 only when out of memory.
 */
int cpr_cmdline_diff(const char *saved, size_t saved_len,
                     const char *saved_machine, const char *saved_cpu,
                     const char *now, size_t now_len,
                     const char *now_machine, const char *now_cpu,
                     CprCmdlineDiff *diff);

void cpr_cmdline_diff_free(CprCmdlineDiff *diff);

/* Whether QEMU's option @name (without dashes) takes no argument. */
bool cpr_cmdline_no_arg(const char *name);

/* Whether option @name with @value is one that may differ (ignored). */
bool cpr_cmdline_ignored(const char *name, const char *value);

#endif
