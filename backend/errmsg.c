/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set(char **errp, const char *path, const char *suffix,
                const char *fmt, va_list ap)
{
    char *what = NULL;
    char *msg = NULL;

    if (!errp || *errp) {
        return;
    }
    if (vasprintf(&what, fmt, ap) < 0) {
        what = NULL;
    }
    if (asprintf(&msg, "%s: %s%s%s", path ? path : "(null)",
                 what ? what : "error", suffix ? ": " : "",
                 suffix ? suffix : "") < 0) {
        /* Out of memory: QEMU still wants some message. */
        msg = strdup("pmem transport: out of memory");
    }
    free(what);
    *errp = msg;
}

void cpr_error(char **errp, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set(errp, path, NULL, fmt, ap);
    va_end(ap);
}

void cpr_error_errno(char **errp, const char *path, int errnum,
                     const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set(errp, path, strerror(errnum), fmt, ap);
    va_end(ap);
}
