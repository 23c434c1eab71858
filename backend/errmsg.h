/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Error messages in the form the transport ABI hands to QEMU: a malloc()ed
 * "PATH: what went wrong" string.  Only the first error is kept, so a
 * cleanup step failing after the real cause cannot hide it.
 */
#ifndef CPR_ERRMSG_H
#define CPR_ERRMSG_H

#define CPR_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* *errp = "PATH: <fmt...>" unless errp is NULL or already set. */
void cpr_error(char **errp, const char *path, const char *fmt, ...)
    CPR_PRINTF(3, 4);

/* Same, with ": strerror(errnum)" appended. */
void cpr_error_errno(char **errp, const char *path, int errnum,
                     const char *fmt, ...) CPR_PRINTF(4, 5);

#endif
