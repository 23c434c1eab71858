/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qtest.h"
#include "line-socket.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>

struct Qtest {
    LineSocket *ls;
};

#define QTEST_TIMEOUT_MS 30000

G_DEFINE_QUARK(qtest-error-quark, qtest_error)

GSocket *qtest_listen(const char *path, GError **errp)
{
    g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_UNIX,
                                           G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_DEFAULT, errp);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);

    if (!sock || !g_socket_bind(sock, addr, FALSE, errp) ||
        !g_socket_listen(sock, errp)) {
        return NULL;
    }
    return g_steal_pointer(&sock);
}

Qtest *qtest_accept(GSocket *listener, guint timeout_ms, GError **errp)
{
    g_autoptr(GSocket) conn = NULL;
    Qtest *qt;

    if (!g_socket_condition_timed_wait(listener, G_IO_IN,
                                       (gint64)timeout_ms * 1000, NULL, errp)) {
        g_prefix_error(errp, "QEMU did not connect to the qtest socket: ");
        return NULL;
    }
    conn = g_socket_accept(listener, NULL, errp);
    if (!conn) {
        return NULL;
    }
    qt = g_new0(Qtest, 1);
    qt->ls = line_socket_new(conn);
    return qt;
}

void qtest_free(Qtest *qt)
{
    if (qt) {
        line_socket_free(qt->ls);
        g_free(qt);
    }
}

/* Send one command; return the text after "OK" (maybe ""), NULL on error. */
static char *command(Qtest *qt, GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static char *command(Qtest *qt, GError **errp, const char *fmt, ...)
{
    gint64 deadline = deadline_after_ms(QTEST_TIMEOUT_MS);
    g_autofree char *cmd = NULL;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (!line_socket_send(qt->ls, cmd, strlen(cmd), deadline, errp)) {
        return NULL;
    }
    for (;;) {
        g_autofree char *line = line_socket_read(qt->ls, deadline, errp);

        if (!line) {
            return NULL;
        }
        if (g_str_has_prefix(line, "IRQ")) {
            continue;   /* only sent after irq_intercept_*, never a reply */
        }
        if (g_str_equal(line, "OK")) {
            return g_strdup("");
        }
        if (g_str_has_prefix(line, "OK ")) {
            return g_strdup(line + 3);
        }
        g_strchomp(cmd);
        g_set_error(errp, QTEST_ERROR, QTEST_ERROR_FAILED, "qtest '%.60s': %s",
                    cmd, line);
        return NULL;
    }
}

static gboolean command_ok(char *reply)
{
    g_free(reply);
    return reply != NULL;
}

static gboolean command_u64(char *reply, guint64 *val, GError **errp)
{
    g_autofree char *r = reply;

    if (!r) {
        return FALSE;
    }
    if (!g_ascii_string_to_unsigned(g_str_has_prefix(r, "0x") ? r + 2 : r, 16,
                                    0, G_MAXUINT64, val, NULL)) {
        g_set_error(errp, QTEST_ERROR, QTEST_ERROR_PROTOCOL,
                    "qtest: bad number '%s'", r);
        return FALSE;
    }
    return TRUE;
}

gboolean qtest_outb(Qtest *qt, guint16 port, guint8 val, GError **errp)
{
    return command_ok(command(qt, errp, "outb 0x%x 0x%x\n", port, val));
}

gboolean qtest_inb(Qtest *qt, guint16 port, guint8 *val, GError **errp)
{
    guint64 v;

    if (!command_u64(command(qt, errp, "inb 0x%x\n", port), &v, errp)) {
        return FALSE;
    }
    *val = v;
    return TRUE;
}

gboolean qtest_writeb(Qtest *qt, guint64 addr, guint8 val, GError **errp)
{
    return command_ok(command(qt, errp, "writeb 0x%" G_GINT64_MODIFIER "x 0x%x\n",
                              addr, val));
}

gboolean qtest_readb(Qtest *qt, guint64 addr, guint8 *val, GError **errp)
{
    guint64 v;

    if (!command_u64(command(qt, errp, "readb 0x%" G_GINT64_MODIFIER "x\n", addr),
                     &v, errp)) {
        return FALSE;
    }
    *val = v;
    return TRUE;
}

gboolean qtest_writel(Qtest *qt, guint64 addr, guint32 val, GError **errp)
{
    return command_ok(command(qt, errp, "writel 0x%" G_GINT64_MODIFIER "x 0x%x\n",
                              addr, val));
}

gboolean qtest_readl(Qtest *qt, guint64 addr, guint32 *val, GError **errp)
{
    guint64 v;

    if (!command_u64(command(qt, errp, "readl 0x%" G_GINT64_MODIFIER "x\n", addr),
                     &v, errp)) {
        return FALSE;
    }
    *val = v;
    return TRUE;
}

gboolean qtest_memwrite(Qtest *qt, guint64 addr, const void *buf, gsize len,
                        GError **errp)
{
    const guint8 *p = buf;
    g_autoptr(GString) hex = g_string_sized_new(len * 2);

    for (gsize i = 0; i < len; i++) {
        g_string_append_printf(hex, "%02x", p[i]);
    }
    return command_ok(command(qt, errp, "write 0x%" G_GINT64_MODIFIER "x 0x%"
                              G_GSIZE_MODIFIER "x 0x%s\n", addr, len, hex->str));
}

gboolean qtest_memread(Qtest *qt, guint64 addr, void *buf, gsize len,
                       GError **errp)
{
    g_autofree char *r = command(qt, errp, "read 0x%" G_GINT64_MODIFIER "x 0x%"
                                 G_GSIZE_MODIFIER "x\n", addr, len);
    guint8 *p = buf;

    if (!r) {
        return FALSE;
    }
    if (!g_str_has_prefix(r, "0x") || strlen(r) != 2 + len * 2) {
        g_set_error(errp, QTEST_ERROR, QTEST_ERROR_PROTOCOL,
                    "qtest read: bad reply '%.40s'", r);
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        p[i] = g_ascii_xdigit_value(r[2 + 2 * i]) << 4 |
               g_ascii_xdigit_value(r[3 + 2 * i]);
    }
    return TRUE;
}

gboolean qtest_memset(Qtest *qt, guint64 addr, gsize len, guint8 val,
                      GError **errp)
{
    return command_ok(command(qt, errp, "memset 0x%" G_GINT64_MODIFIER "x 0x%"
                              G_GSIZE_MODIFIER "x 0x%x\n", addr, len, val));
}

gboolean qtest_b64write(Qtest *qt, guint64 addr, const void *buf, gsize len,
                        GError **errp)
{
    g_autofree char *b64 = g_base64_encode(buf, len);

    return command_ok(command(qt, errp, "b64write 0x%" G_GINT64_MODIFIER "x 0x%"
                              G_GSIZE_MODIFIER "x %s\n", addr, len, b64));
}

gboolean qtest_b64read(Qtest *qt, guint64 addr, void *buf, gsize len,
                       GError **errp)
{
    g_autofree char *r = command(qt, errp, "b64read 0x%" G_GINT64_MODIFIER "x 0x%"
                                 G_GSIZE_MODIFIER "x\n", addr, len);
    g_autofree guchar *data = NULL;
    gsize n;

    if (!r) {
        return FALSE;
    }
    data = g_base64_decode(r, &n);
    if (n != len) {
        g_set_error(errp, QTEST_ERROR, QTEST_ERROR_PROTOCOL,
                    "qtest b64read: got %" G_GSIZE_FORMAT " bytes, want %"
                    G_GSIZE_FORMAT, n, len);
        return FALSE;
    }
    memcpy(buf, data, len);
    return TRUE;
}
