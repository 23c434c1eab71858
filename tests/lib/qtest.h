/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Minimal client for QEMU's qtest text protocol (system/qtest.c): one
 * command per line, answered by "OK [value]" or "FAIL ..."; asynchronous
 * "IRQ ..." lines are skipped.
 */
#ifndef HARNESS_QTEST_H
#define HARNESS_QTEST_H

#include <gio/gio.h>

#define QTEST_ERROR (qtest_error_quark())
GQuark qtest_error_quark(void);

typedef enum {
    QTEST_ERROR_FAILED,     /* QEMU answered FAIL/ERR */
    QTEST_ERROR_PROTOCOL,   /* reply we could not parse */
} QtestError;

typedef struct Qtest Qtest;

/*
 * QEMU connects to us (-qtest unix:PATH), as libqtest does: listen before
 * spawning QEMU, then accept on @listener.
 */
GSocket *qtest_listen(const char *path, GError **errp);
Qtest *qtest_accept(GSocket *listener, guint timeout_ms, GError **errp);
void qtest_free(Qtest *qt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Qtest, qtest_free)

gboolean qtest_outb(Qtest *qt, guint16 port, guint8 val, GError **errp);
gboolean qtest_inb(Qtest *qt, guint16 port, guint8 *val, GError **errp);

gboolean qtest_writeb(Qtest *qt, guint64 addr, guint8 val, GError **errp);
gboolean qtest_readb(Qtest *qt, guint64 addr, guint8 *val, GError **errp);
gboolean qtest_writel(Qtest *qt, guint64 addr, guint32 val, GError **errp);
gboolean qtest_readl(Qtest *qt, guint64 addr, guint32 *val, GError **errp);

/* Guest-physical bulk access: hex "write"/"read" and base64 variants. */
gboolean qtest_memwrite(Qtest *qt, guint64 addr, const void *buf, gsize len,
                        GError **errp);
gboolean qtest_memread(Qtest *qt, guint64 addr, void *buf, gsize len,
                       GError **errp);
gboolean qtest_memset(Qtest *qt, guint64 addr, gsize len, guint8 val,
                      GError **errp);
gboolean qtest_b64write(Qtest *qt, guint64 addr, const void *buf, gsize len,
                        GError **errp);
gboolean qtest_b64read(Qtest *qt, guint64 addr, void *buf, gsize len,
                       GError **errp);

#endif
