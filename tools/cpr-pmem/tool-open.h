/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How cpr-pmem opens an image file outside the backend's writer and reader. */
#ifndef CPR_TOOL_OPEN_H
#define CPR_TOOL_OPEN_H

#include <stddef.h>
#include <sys/stat.h>

/* Not a regular file: it was never opened. */
#define TOOL_NOT_REGULAR (-2)

/*
 * @path opened with @flags (O_CLOEXEC added), following symlinks, only if
 * it is a regular file; *@st describes it.  TOOL_NOT_REGULAR if it is
 * not, -1 with errno if it cannot be opened.
 */
int tool_open_regular(const char *path, int flags, struct stat *st);

/* The same, read-only and without blocking on a FIFO's open. */
int tool_open_ro(const char *path, struct stat *st);

/* The media class of the image file at @path now (media.h). */
int tool_image_media(const char *path, char *detail, size_t size);

#endif
