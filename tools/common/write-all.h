/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A whole buffer to a pipe or file, through short writes and signals. */
#ifndef CPR_WRITE_ALL_H
#define CPR_WRITE_ALL_H

#include <stddef.h>

/* tool_write_all -- all of @len bytes of @p to @fd; -1 with errno. */
int tool_write_all(int fd, const void *p, size_t len);

#endif
