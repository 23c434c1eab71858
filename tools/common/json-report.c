/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One way to build the tools' JSON reports, so that a number, a missing
 * value or a string from a file is written alike in each of them.
 */
#include "json-report.h"
#include "clean-text.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

/*
 * report_add_u64 -- json-glib holds integers as gint64, so a value above
 * INT64_MAX would print negative: such values become exact decimal
 * strings instead (cpr-pmem --help says so).  Only a forged or damaged
 * record whose checksum still matches can hold one: generations are at
 * most INT64_MAX, a payload that loads ends inside the file (off_t), and
 * a time above INT64_MAX ns is after the year 2262.
 */
void report_add_u64(JsonBuilder *b, const char *name, uint64_t v)
{
    json_builder_set_member_name(b, name);
    if (v <= INT64_MAX) {
        json_builder_add_int_value(b, (gint64)v);
    } else {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        json_builder_add_string_value(b, buf);
    }
}

/* report_add_hex -- a hex string: JSON numbers cannot hold 64 bits. */
void report_add_hex(JsonBuilder *b, const char *name, uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, buf);
}

/* report_add_str -- a string we made, or null. */
void report_add_str(JsonBuilder *b, const char *name, const char *v)
{
    json_builder_set_member_name(b, name);
    if (v) {
        json_builder_add_string_value(b, v);
    } else {
        json_builder_add_null_value(b);
    }
}

/* report_add_clean -- a string from a file, escaped (clean-text.h). */
void report_add_clean(JsonBuilder *b, const char *name, const char *v)
{
    char *c = tool_clean(v);

    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, c);
    g_free(c);
}

/* report_add_num -- a measurement, null if it was not taken. */
void report_add_num(JsonBuilder *b, const char *name, double v)
{
    json_builder_set_member_name(b, name);
    if (isnan(v)) {
        json_builder_add_null_value(b);
    } else {
        json_builder_add_double_value(b, v);
    }
}

/* report_add_strv -- an argument or environment list. */
void report_add_strv(JsonBuilder *b, const char *name, char **v)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (int i = 0; v && v[i]; i++) {
        json_builder_add_string_value(b, v[i]);
    }
    json_builder_end_array(b);
}

/* report_node_text -- a document as text. */
char *report_node_text(JsonNode *root, bool pretty)
{
    JsonGenerator *gen = json_generator_new();
    char *text;

    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, pretty);
    text = json_generator_to_data(gen, NULL);
    g_object_unref(gen);
    return text;
}

/* report_text -- the builder's finished document. */
char *report_text(JsonBuilder *b, bool pretty)
{
    JsonNode *root = json_builder_get_root(b);
    char *text = report_node_text(root, pretty);

    json_node_unref(root);
    return text;
}
