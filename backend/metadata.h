/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an image records for humans (and for a later inspection tool):
 * when and by which QEMU, on which kernel, and a fingerprint of the
 * command line so that a restore under a different configuration can be
 * spotted.
 */
#ifndef CPR_METADATA_H
#define CPR_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"

typedef struct CprMetadata {
    uint64_t ctime_ns;
    char qemu_version[CPR_QEMU_VERSION_LEN];
    char kernel_release[CPR_KERNEL_RELEASE_LEN];
    uint64_t cmdline_fp;
    char *argv;                 /* cpr_cmdline_own(); malloc()ed */
    size_t argv_len;
} CprMetadata;

/* Collect everything for this process, now.  Never fails: unknown
 * values are left empty / zero.  Free with cpr_metadata_free(). */
void cpr_metadata_collect(CprMetadata *md, const char *qemu_version);
void cpr_metadata_free(CprMetadata *md);

/* Record @args (NUL-separated) as the argument list instead; -1 when out
 * of memory (the old list kept). */
int cpr_metadata_set_argv(CprMetadata *md, const char *args, size_t len);

/*
 * XXH3 of a NUL-separated argument list (as in /proc/PID/cmdline) with
 * "-incoming X", "-incoming=X" (and the "--" spellings) removed, so that
 * both ends of a cpr-reboot started the same way agree.
 */
uint64_t cpr_cmdline_fingerprint(const char *args, size_t len);

uint64_t cpr_realtime_ns(void);

/* CLOCK_MONOTONIC in ms, for deadlines and budgets. */
int64_t cpr_monotonic_ms(void);

/* "YYYY-MM-DD HH:MM:SS.nnnnnnnnn UTC" into @buf, or "(out of range)". */
void cpr_format_utc(int64_t sec, uint32_t nsec, char *buf, size_t size);
void cpr_format_utc_ns(uint64_t ns, char *buf, size_t size);

#endif
