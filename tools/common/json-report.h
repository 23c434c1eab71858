/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tools' JSON reports (cpr-pmem info --output=json, cpr-host-update's
 * manifest and --times): members added to a json-glib builder one call
 * each, and the finished document as text.
 */
#ifndef CPR_JSON_REPORT_H
#define CPR_JSON_REPORT_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

/* An unsigned value: a number, or above INT64_MAX an exact decimal string. */
void report_add_u64(JsonBuilder *b, const char *name, uint64_t v);
/* A checksum or fingerprint: "0x" and 16 hex digits. */
void report_add_hex(JsonBuilder *b, const char *name, uint64_t v);
/* A string; NULL is null. */
void report_add_str(JsonBuilder *b, const char *name, const char *v);
/* A string from a file or another process, through tool_clean(). */
void report_add_clean(JsonBuilder *b, const char *name, const char *v);
/* A measurement; NAN (not measured) is null. */
void report_add_num(JsonBuilder *b, const char *name, double v);
/* A string list; NULL is []. */
void report_add_strv(JsonBuilder *b, const char *name, char **v);
/* @root as text, indented if @pretty; g_free() it. */
char *report_node_text(JsonNode *root, bool pretty);
/* The builder's document, indented if @pretty; g_free() it. */
char *report_text(JsonBuilder *b, bool pretty);

#endif
