/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "line-socket.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>

struct LineSocket {
    GSocket *sock;
    GString *rx;
};

static gint64 remaining_us(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();
    return left > 0 ? left : 0;
}

GSocket *unix_socket_connect(const char *path, gint64 deadline, GError **errp)
{
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

    for (;;) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_UNIX,
                                               G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_DEFAULT, errp);
        if (!sock) {
            return NULL;
        }
        if (g_socket_connect(sock, addr, NULL, &err)) {
            return g_steal_pointer(&sock);
        }
        /* QEMU creates the listening socket some time after exec. */
        if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) &&
            !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return NULL;
        }
        if (!remaining_us(deadline)) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "timed out connecting to %s: %s", path, err->message);
            return NULL;
        }
        g_usleep(5000);
    }
}

LineSocket *line_socket_new(GSocket *sock)
{
    LineSocket *ls = g_new0(LineSocket, 1);

    ls->sock = g_object_ref(sock);
    ls->rx = g_string_new(NULL);
    return ls;
}

void line_socket_free(LineSocket *ls)
{
    if (!ls) {
        return;
    }
    g_socket_close(ls->sock, NULL);
    g_object_unref(ls->sock);
    g_string_free(ls->rx, TRUE);
    g_free(ls);
}

gboolean line_socket_send(LineSocket *ls, const char *data, gsize len,
                          gint64 deadline, GError **errp)
{
    while (len) {
        gssize n;

        if (!g_socket_condition_timed_wait(ls->sock, G_IO_OUT,
                                           remaining_us(deadline), NULL, errp)) {
            return FALSE;
        }
        n = g_socket_send(ls->sock, data, len, NULL, errp);
        if (n < 0) {
            return FALSE;
        }
        data += n;
        len -= n;
    }
    return TRUE;
}

char *line_socket_read(LineSocket *ls, gint64 deadline, GError **errp)
{
    for (;;) {
        char *nl = memchr(ls->rx->str, '\n', ls->rx->len);
        char buf[65536];
        gssize n;

        if (nl) {
            gsize len = nl - ls->rx->str;
            char *line = g_strndup(ls->rx->str, len);

            g_string_erase(ls->rx, 0, len + 1);
            g_strchomp(line);   /* QMP ends lines with "\r\n" */
            return line;
        }
        if (!g_socket_condition_timed_wait(ls->sock, G_IO_IN,
                                           remaining_us(deadline), NULL, errp)) {
            return NULL;
        }
        n = g_socket_receive(ls->sock, buf, sizeof(buf), NULL, errp);
        if (n < 0) {
            return NULL;
        }
        if (n == 0) {
            g_set_error_literal(errp, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                "peer closed the connection");
            return NULL;
        }
        g_string_append_len(ls->rx, buf, n);
    }
}
