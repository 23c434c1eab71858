/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the cpr-pmem commands. */
#ifndef CPR_TOOL_H
#define CPR_TOOL_H

#include <stdbool.h>

/* Exit codes, documented in --help. */
enum {
    TOOL_OK = 0,
    TOOL_REFUSED = 1,   /* not an image, corrupt, would not load */
    TOOL_USAGE = 2,     /* bad command line, or the file cannot be opened */
};

int tool_info(const char *path, bool json);

#endif
