/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A stream socket read line by line with absolute deadlines, shared by the
 * QMP and qtest clients (both are newline-terminated text protocols).
 */
#ifndef HARNESS_LINE_SOCKET_H
#define HARNESS_LINE_SOCKET_H

#include <gio/gio.h>

typedef struct LineSocket LineSocket;

/* Deadlines are g_get_monotonic_time() values in microseconds. */
static inline gint64 deadline_after_ms(guint ms)
{
    return g_get_monotonic_time() + (gint64)ms * 1000;
}

/* Connect to a unix socket, retrying while it does not exist yet. */
GSocket *unix_socket_connect(const char *path, gint64 deadline, GError **errp);

LineSocket *line_socket_new(GSocket *sock);   /* takes a reference */
void line_socket_free(LineSocket *ls);

gboolean line_socket_send(LineSocket *ls, const char *data, gsize len,
                          gint64 deadline, GError **errp);
/* Next line without its "\n" (and "\r"); NULL with G_IO_ERROR on failure. */
char *line_socket_read(LineSocket *ls, gint64 deadline, GError **errp);

#endif
