/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem info: everything the header says, slot by slot, plus the
 * verdict of the transport's reader (which also verifies the payload).
 */
#include "tool.h"
#include "clean-text.h"
#include "json-report.h"
#include "last-save.h"
#include "metadata.h"
#include "reader.h"
#include "tool-open.h"
#include "tool-vm.h"
#include "vmdesc.h"

#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *sb_state_name(CprDecode d)
{
    switch (d) {
    case CPR_DECODE_OK: return "valid";
    case CPR_DECODE_EMPTY: return "empty";
    case CPR_DECODE_TOO_NEW: return "too-new";
    default: return "invalid";
    }
}

/* A slot that is not valid was either never finished or damaged later:
 * the reader treats both alike, so we call it torn. */
static const char *slot_state_name(CprDecode d)
{
    return d == CPR_DECODE_BAD ? "torn" : sb_state_name(d);
}

static void format_uuid(const uint8_t *u, char *buf)
{
    for (int i = 0, n = 0; i < 16; i++) {
        n += sprintf(buf + n, "%02x%s", u[i],
                     (i == 3 || i == 5 || i == 7 || i == 9) ? "-" : "");
    }
}

static const char *flags_name(uint64_t flags)
{
    return (flags & CPR_REC_FLAG_INVALIDATED) ? "INVALIDATED" : "none";
}

static bool slot_valid(const CprImage *h, int i)
{
    return h->slots.state[i] == CPR_DECODE_OK;
}

static void print_human(const char *path, const CprImage *h,
                        const char *refusal, const CprReader *r)
{
    const CprSlots *s = &h->slots;
    char t[64], uuid[40], detail[CPR_VMDESC_MAX_DETAIL];
    int media = tool_image_media(path, detail, sizeof(detail));

    printf("image: %s\n", path);
    printf("file size: %" PRIu64 " bytes\n", h->size);
    tool_print_media("media", (uint32_t)media, detail);
    printf("superblock: %s\n", sb_state_name(h->sb_state));
    if (h->sb_state == CPR_DECODE_OK || h->sb_state == CPR_DECODE_TOO_NEW) {
        printf("  format version: %u\n", h->sb.version);
    }
    if (h->sb_state == CPR_DECODE_OK) {
        format_uuid(h->sb.uuid, uuid);
        cpr_format_utc_ns(h->sb.ctime_ns, t, sizeof(t));
        printf("  uuid: %s\n", uuid);
        printf("  created: %s (%" PRIu64 " ns)\n", t, h->sb.ctime_ns);
    }
    for (int i = 0; i < (int)CPR_NR_SLOTS; i++) {
        const CprRecord *r = &s->rec[i];
        char *qemu, *kernel;

        printf("slot %d: %s\n", i, slot_state_name(s->state[i]));
        if (s->state[i] == CPR_DECODE_TOO_NEW) {
            printf("  format version: %u\n", r->version);
            printf("  generation: %" PRIu64 "\n", r->generation);
        }
        if (!slot_valid(h, i)) {
            continue;
        }
        cpr_format_utc_ns(r->ctime_ns, t, sizeof(t));
        printf("  generation: %" PRIu64 "\n", r->generation);
        printf("  flags: 0x%" PRIx64 " (%s)\n", r->flags, flags_name(r->flags));
        printf("  payload offset: %" PRIu64 "\n", r->payload_off);
        printf("  payload length: %" PRIu64 "\n", r->payload_len);
        printf("  stream length: %" PRIu64 "\n", r->stream_len);
        printf("  vm description length: %" PRIu64 "\n",
               cpr_record_vmdesc_len(r));
        printf("  record format version: %u\n", r->version);
        printf("  payload xxh3: 0x%016" PRIx64 "\n", r->payload_xxh3);
        printf("  saved: %s (%" PRIu64 " ns)\n", t, r->ctime_ns);
        /* Strings from the file: a terminal must not obey them. */
        qemu = tool_clean(r->qemu_version);
        kernel = tool_clean(r->kernel_release);
        printf("  qemu version: %s\n", qemu);
        printf("  kernel release: %s\n", kernel);
        g_free(qemu);
        g_free(kernel);
        printf("  cmdline fingerprint: 0x%016" PRIx64 "\n", r->cmdline_fp);
    }
    if (s->newest >= 0) {
        printf("committed generation: %" PRIu64 " (slot %d)\n",
               s->rec[s->newest].generation, s->newest);
    } else {
        printf("committed generation: none\n");
    }
    printf("loadable: %s%s\n", refusal ? "no: " : "yes",
           refusal ? refusal : "");
    if (r && cpr_reader_vmdesc(r)) {
        printf("saved vm (generation %" PRIu64 "):\n",
               cpr_reader_record(r)->generation);
        tool_print_vm(cpr_reader_vmdesc(r));
    } else if (r) {
        printf("saved vm: not recorded (record format %u)\n",
               cpr_reader_record(r)->version);
    }
    tool_print_exec_status(path);
}

static void add_time(JsonBuilder *b, const char *name, uint64_t ns)
{
    char t[64], ns_name[32];

    cpr_format_utc_ns(ns, t, sizeof(t));
    report_add_clean(b, name, t);
    snprintf(ns_name, sizeof(ns_name), "%s-ns", name);
    report_add_u64(b, ns_name, ns);
}

static void add_slot(JsonBuilder *b, const CprImage *h, int i)
{
    const CprRecord *r = &h->slots.rec[i];

    json_builder_begin_object(b);
    report_add_u64(b, "slot", (uint64_t)i);
    report_add_clean(b, "state", slot_state_name(h->slots.state[i]));
    if (h->slots.state[i] == CPR_DECODE_TOO_NEW) {
        report_add_u64(b, "format-version", r->version);
        report_add_u64(b, "generation", r->generation);
    }
    if (slot_valid(h, i)) {
        report_add_u64(b, "generation", r->generation);
        report_add_u64(b, "flags", r->flags);
        json_builder_set_member_name(b, "invalidated");
        json_builder_add_boolean_value(b,
            (r->flags & CPR_REC_FLAG_INVALIDATED) != 0);
        report_add_u64(b, "payload-offset", r->payload_off);
        report_add_u64(b, "payload-length", r->payload_len);
        report_add_u64(b, "stream-length", r->stream_len);
        report_add_u64(b, "vm-description-length", cpr_record_vmdesc_len(r));
        report_add_u64(b, "record-format-version", r->version);
        report_add_hex(b, "payload-xxh3", r->payload_xxh3);
        add_time(b, "saved", r->ctime_ns);
        report_add_clean(b, "qemu-version", r->qemu_version);
        report_add_clean(b, "kernel-release", r->kernel_release);
        report_add_hex(b, "cmdline-fingerprint", r->cmdline_fp);
    }
    json_builder_end_object(b);
}

static void print_json(const char *path, const CprImage *h,
                       const char *refusal, const CprReader *r)
{
    JsonBuilder *b = json_builder_new();
    char *text, uuid[40], detail[CPR_VMDESC_MAX_DETAIL];
    int media = tool_image_media(path, detail, sizeof(detail));

    json_builder_begin_object(b);
    report_add_clean(b, "filename", path);
    report_add_u64(b, "file-size", h->size);
    tool_add_media(b, "media", (uint32_t)media, detail);
    json_builder_set_member_name(b, "superblock");
    json_builder_begin_object(b);
    report_add_clean(b, "state", sb_state_name(h->sb_state));
    if (h->sb_state == CPR_DECODE_OK || h->sb_state == CPR_DECODE_TOO_NEW) {
        report_add_u64(b, "format-version", h->sb.version);
    }
    if (h->sb_state == CPR_DECODE_OK) {
        format_uuid(h->sb.uuid, uuid);
        report_add_clean(b, "uuid", uuid);
        add_time(b, "created", h->sb.ctime_ns);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "slots");
    json_builder_begin_array(b);
    for (int i = 0; i < (int)CPR_NR_SLOTS; i++) {
        add_slot(b, h, i);
    }
    json_builder_end_array(b);
    if (h->slots.newest >= 0) {
        report_add_u64(b, "committed-generation",
                h->slots.rec[h->slots.newest].generation);
    } else {
        json_builder_set_member_name(b, "committed-generation");
        json_builder_add_null_value(b);
    }
    json_builder_set_member_name(b, "loadable");
    json_builder_add_boolean_value(b, refusal == NULL);
    if (refusal) {
        report_add_clean(b, "refusal", refusal);
    }
    /* The VM the loadable generation was saved with; null if it loads
     * but recorded none (record format 1). */
    if (r) {
        json_builder_set_member_name(b, "vm");
        if (cpr_reader_vmdesc(r)) {
            tool_add_vm(b, cpr_reader_vmdesc(r));
        } else {
            json_builder_add_null_value(b);
        }
    }
    tool_add_exec_status(b, path);
    json_builder_end_object(b);

    text = report_text(b, true);
    printf("%s\n", text);
    g_free(text);
    g_object_unref(b);
}

/* tool_info -- cpr-pmem info, in words or in JSON. */
int tool_info(const char *path, bool json)
{
    CprImage h;
    CprReader *r;
    char *err = NULL;

    if (cpr_image_open_read(path, &h, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        /* e.g. locked by a save: which one, if it is the exec: helper */
        if (!json) {
            tool_print_exec_status(path);
        }
        return TOOL_REFUSED;
    }
    /* The verdict comes from the full open, payload checksum included. */
    r = cpr_reader_open(path, &err);
    if (json) {
        print_json(path, &h, err, r);
    } else {
        print_human(path, &h, err, r);
    }
    cpr_reader_close(r);
    cpr_image_close(&h);
    free(err);
    return TOOL_OK;
}
