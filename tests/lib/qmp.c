/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qmp.h"
#include "line-socket.h"

#include <string.h>

struct Qmp {
    LineSocket *ls;
    GQueue events;      /* JsonObject *, oldest first */
    guint timeout_ms;
};

G_DEFINE_QUARK(qmp-error-quark, qmp_error)

/* Next message as an object; events are returned like any other message. */
static JsonObject *read_message(Qmp *qmp, gint64 deadline, GError **errp)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autofree char *line = NULL;
    JsonNode *root;

    do {
        g_free(line);
        line = line_socket_read(qmp->ls, deadline, errp);
        if (!line) {
            return NULL;
        }
    } while (!*line);
    if (!json_parser_load_from_data(parser, line, -1, errp)) {
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL,
                    "QMP message is not an object: %s", line);
        return NULL;
    }
    return json_object_ref(json_node_get_object(root));
}

/* Read until a reply (return/error) arrives, queueing events on the way. */
static JsonObject *read_reply(Qmp *qmp, gint64 deadline, GError **errp)
{
    for (;;) {
        JsonObject *msg = read_message(qmp, deadline, errp);

        if (!msg) {
            return NULL;
        }
        if (json_object_has_member(msg, "event")) {
            g_queue_push_tail(&qmp->events, msg);
            continue;
        }
        return msg;
    }
}

Qmp *qmp_new(GSocket *sock, guint timeout_ms, GError **errp)
{
    gint64 deadline = deadline_after_ms(timeout_ms);
    g_autoptr(JsonObject) greeting = NULL;
    Qmp *qmp = g_new0(Qmp, 1);

    qmp->ls = line_socket_new(sock);
    qmp->timeout_ms = 30000;
    g_queue_init(&qmp->events);

    greeting = read_message(qmp, deadline, errp);
    if (!greeting) {
        goto fail;
    }
    if (!json_object_has_member(greeting, "QMP")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL, "no QMP greeting");
        goto fail;
    }
    if (!qmp_run(qmp, "qmp_capabilities", NULL, errp)) {
        goto fail;
    }
    return qmp;

fail:
    qmp_free(qmp);
    return NULL;
}

Qmp *qmp_connect(const char *path, guint timeout_ms, GError **errp)
{
    g_autoptr(GSocket) sock = unix_socket_connect(path,
                                                  deadline_after_ms(timeout_ms),
                                                  errp);

    return sock ? qmp_new(sock, timeout_ms, errp) : NULL;
}

void qmp_free(Qmp *qmp)
{
    if (!qmp) {
        return;
    }
    line_socket_free(qmp->ls);
    g_queue_clear_full(&qmp->events, (GDestroyNotify)json_object_unref);
    g_free(qmp);
}

void qmp_set_timeout(Qmp *qmp, guint timeout_ms)
{
    qmp->timeout_ms = timeout_ms;
}

static gboolean send_command(Qmp *qmp, const char *cmd, JsonObject *args,
                             gint64 deadline, GError **errp)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
    g_autofree char *text = NULL;
    g_autofree char *line = NULL;

    json_object_set_string_member(obj, "execute", cmd);
    if (args) {
        json_object_set_object_member(obj, "arguments", json_object_ref(args));
    }
    json_node_set_object(node, obj);
    text = json_to_string(node, FALSE);
    line = g_strconcat(text, "\n", NULL);
    return line_socket_send(qmp->ls, line, strlen(line), deadline, errp);
}

gboolean qmp_send(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp)
{
    return send_command(qmp, cmd, args, deadline_after_ms(qmp->timeout_ms),
                        errp);
}

JsonNode *qmp_receive(Qmp *qmp, const char *cmd, GError **errp)
{
    g_autoptr(JsonObject) reply = NULL;

    reply = read_reply(qmp, deadline_after_ms(qmp->timeout_ms), errp);
    if (!reply) {
        g_prefix_error(errp, "%s: ", cmd);
        return NULL;
    }
    if (json_object_has_member(reply, "error")) {
        JsonObject *e = json_object_get_object_member(reply, "error");

        g_set_error(errp, QMP_ERROR, QMP_ERROR_COMMAND, "%s: %s: %s", cmd,
                    json_object_get_string_member_with_default(e, "class", "?"),
                    json_object_get_string_member_with_default(e, "desc", "?"));
        return NULL;
    }
    if (!json_object_has_member(reply, "return")) {
        g_set_error(errp, QMP_ERROR, QMP_ERROR_PROTOCOL,
                    "%s: reply has neither return nor error", cmd);
        return NULL;
    }
    return json_object_dup_member(reply, "return");
}

JsonNode *qmp_execute(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp)
{
    if (!qmp_send(qmp, cmd, args, errp)) {
        return NULL;
    }
    return qmp_receive(qmp, cmd, errp);
}

gboolean qmp_run(Qmp *qmp, const char *cmd, JsonObject *args, GError **errp)
{
    JsonNode *ret = qmp_execute(qmp, cmd, args, errp);

    if (!ret) {
        return FALSE;
    }
    json_node_unref(ret);
    return TRUE;
}

static JsonObject *take_queued_event(Qmp *qmp, const char *name)
{
    for (GList *l = qmp->events.head; l; l = l->next) {
        JsonObject *ev = l->data;

        if (g_str_equal(json_object_get_string_member(ev, "event"), name)) {
            g_queue_delete_link(&qmp->events, l);
            return ev;
        }
    }
    return NULL;
}

JsonObject *qmp_wait_event(Qmp *qmp, const char *name, guint timeout_ms,
                           GError **errp)
{
    gint64 deadline = deadline_after_ms(timeout_ms);

    for (;;) {
        JsonObject *ev = take_queued_event(qmp, name);
        JsonObject *msg;

        if (ev) {
            return ev;
        }
        msg = read_message(qmp, deadline, errp);
        if (!msg) {
            g_prefix_error(errp, "waiting for event %s: ", name);
            return NULL;
        }
        if (json_object_has_member(msg, "event")) {
            g_queue_push_tail(&qmp->events, msg);
        } else {
            json_object_unref(msg);   /* stray reply: nothing is waiting for it */
        }
    }
}

gboolean qmp_set_capability(Qmp *qmp, const char *cap, gboolean on, GError **errp)
{
    g_autoptr(JsonObject) args = json_object_new();
    JsonArray *caps = json_array_new();
    JsonObject *c = json_object_new();

    json_object_set_string_member(c, "capability", cap);
    json_object_set_boolean_member(c, "state", on);
    json_array_add_object_element(caps, c);
    json_object_set_array_member(args, "capabilities", caps);
    return qmp_run(qmp, "migrate-set-capabilities", args, errp);
}

gboolean qmp_set_parameter(Qmp *qmp, const char *param, const char *value,
                           GError **errp)
{
    g_autoptr(JsonObject) args = json_object_new();

    json_object_set_string_member(args, param, value);
    return qmp_run(qmp, "migrate-set-parameters", args, errp);
}

gboolean qmp_migrate(Qmp *qmp, const char *uri, GError **errp)
{
    g_autoptr(JsonObject) args = json_object_new();

    json_object_set_string_member(args, "uri", uri);
    return qmp_run(qmp, "migrate", args, errp);
}

gboolean qmp_migrate_incoming(Qmp *qmp, const char *uri, GError **errp)
{
    g_autoptr(JsonObject) args = json_object_new();

    json_object_set_string_member(args, "uri", uri);
    return qmp_run(qmp, "migrate-incoming", args, errp);
}

gboolean qmp_wait_migration(Qmp *qmp, guint timeout_ms, JsonObject **info,
                            GError **errp)
{
    gint64 deadline = deadline_after_ms(timeout_ms);

    for (;;) {
        g_autoptr(JsonNode) ret = qmp_execute(qmp, "query-migrate", NULL, errp);
        JsonObject *obj;
        const char *status;

        if (!ret) {
            return FALSE;
        }
        obj = json_node_get_object(ret);
        status = json_object_get_string_member_with_default(obj, "status", "none");
        if (g_str_equal(status, "completed")) {
            if (info) {
                *info = json_object_ref(obj);
            }
            return TRUE;
        }
        if (g_str_equal(status, "failed") || g_str_equal(status, "cancelled")) {
            g_set_error(errp, QMP_ERROR, QMP_ERROR_MIGRATION, "migration %s: %s",
                        status,
                        json_object_get_string_member_with_default(obj, "error-desc",
                                                                   "(no error-desc)"));
            return FALSE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "migration still '%s' after %u ms", status, timeout_ms);
            return FALSE;
        }
        g_usleep(1000);   /* 1 ms polling keeps the measured time honest */
    }
}

char *qmp_query_status(Qmp *qmp, GError **errp)
{
    g_autoptr(JsonNode) ret = qmp_execute(qmp, "query-status", NULL, errp);

    if (!ret) {
        return NULL;
    }
    return g_strdup(json_object_get_string_member_with_default(
                        json_node_get_object(ret), "status", "?"));
}

gboolean qmp_wait_status(Qmp *qmp, const char *status, guint timeout_ms,
                         GError **errp)
{
    gint64 deadline = deadline_after_ms(timeout_ms);

    for (;;) {
        g_autofree char *now = qmp_query_status(qmp, errp);

        if (!now) {
            return FALSE;
        }
        if (g_str_equal(now, status)) {
            return TRUE;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "status still '%s' (want '%s') after %u ms",
                        now, status, timeout_ms);
            return FALSE;
        }
        g_usleep(1000);
    }
}

gboolean qmp_quit(Qmp *qmp, GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (qmp_run(qmp, "quit", NULL, &err) ||
        g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)) {
        return TRUE;
    }
    g_propagate_error(errp, g_steal_pointer(&err));
    return FALSE;
}

JsonObject *qmp_args(const char *text)
{
    g_autoptr(JsonNode) node = text ? json_from_string(text, NULL) : NULL;

    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
        return NULL;
    }
    return json_object_ref(json_node_get_object(node));
}
