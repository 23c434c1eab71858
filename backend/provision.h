/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Making room for the next save while the restored guest runs.
 *
 * The first touch of a file page allocates and zeroes it (tmpfs; DAX
 * zeroes unwritten blocks the same way), and a save into fresh room pays
 * for that inside the pause: a few hundred MB/s here, against several
 * GB/s into pages that exist.  After a restore, where the next save will
 * go and about how long it will be are known (placement.h), and the guest
 * will run for hours: a thread allocates and faults in that room now.
 *
 * It changes no byte of the file (posix_fallocate and write faults
 * without stores), so it takes no lock and a concurrent reader, tool or
 * even writer is unaffected.  Best effort: errors end it silently.
 */
#ifndef CPR_PROVISION_H
#define CPR_PROVISION_H

#include <stdint.h>

typedef struct CprProvision CprProvision;

/* Allocate and fault in [off, off + len) of @path; NULL if no thread. */
CprProvision *cpr_provision_start(const char *path, uint64_t off,
                                  uint64_t len);

/* Stop (within one 2 MiB step) and join; NULL is fine. */
void cpr_provision_stop(CprProvision *pv);

#endif
