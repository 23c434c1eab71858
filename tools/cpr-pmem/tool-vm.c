/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The saved VM as cpr-pmem info shows it: what the VM description of the
 * loadable generation records, in words and in JSON.
 */
#include "tool-vm.h"
#include "clean-text.h"
#include "json-report.h"
#include "media.h"
#include "metadata.h"
#include "vmdesc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* The argument list, shell-quoted where needed, one line. */
static char *quoted_argv(const CprVmdesc *d)
{
    GString *s = g_string_new(NULL);

    for (size_t i = 0; i < d->argv_len; i += strlen(d->argv + i) + 1) {
        char *a = tool_clean(d->argv + i);
        bool plain = *a != 0;

        for (const char *p = a; *p && plain; p++) {
            plain = g_ascii_isalnum(*p) || strchr("_./,=:@%+-", *p);
        }
        if (s->len) {
            g_string_append_c(s, ' ');
        }
        if (plain) {
            g_string_append(s, a);
        } else {
            char *q = g_shell_quote(a);

            g_string_append(s, q);
            g_free(q);
        }
        g_free(a);
    }
    return g_string_free(s, FALSE);
}

static void flags_text(uint32_t f, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s", f & CPR_RAM_SHARED ? "shared " : "",
             f & CPR_RAM_PMEM ? "pmem " : "",
             f & CPR_RAM_PREALLOC ? "prealloc " : "", f ? "" : "none ");
    buf[strlen(buf) - 1] = 0;
}

/* tool_print_media -- "LABEL: class (detail)". */
void tool_print_media(const char *label, uint32_t media, const char *detail)
{
    char *d = tool_clean(detail);

    printf("%s: %s (%s)\n", label, cpr_media_name(media), d);
    g_free(d);
}

/* tool_print_vm -- the VM description, one field a line. */
void tool_print_vm(const CprVmdesc *d)
{
    char *s, buf[128];

    printf("  description version: %u\n", d->version);
    printf("  seed: 0x%016" PRIx64 "\n", d->seed);
#define STR(label, v) (s = tool_clean(v), printf("  " label ": %s\n", s), \
                       g_free(s))
    STR("qemu version", d->qemu_version);
    STR("kernel release", d->kernel_release);
    STR("machine", d->machine);
    STR("cpu", d->cpu);
    s = quoted_argv(d);
    printf("  arguments (%u): %s\n", cpr_vmdesc_argc(d), s);
    g_free(s);
    tool_print_media("  image media", d->image_media, d->image_media_detail);
    printf("  ram blocks: %u\n", d->nr_blocks);
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];

        STR("ram block", k->name);
        printf("    size: %" PRIu64 "\n", k->size);
        flags_text(k->flags, buf, sizeof(buf));
        printf("    flags: 0x%x (%s)\n", k->flags, buf);
        printf("    fd offset: %" PRIu64 "\n", k->fd_offset);
        tool_print_media("    media", k->media, k->media_detail);
        if (k->has_file) {
            STR("  file", k->file.path);
            printf("    device: %u:%u\n", major(k->file.dev),
                   minor(k->file.dev));
            printf("    inode: %" PRIu64 "\n", k->file.ino);
            printf("    file size: %" PRIu64 "\n", k->file.size);
            cpr_format_utc(k->file.mtime_sec, k->file.mtime_nsec, buf,
                       sizeof(buf));
            printf("    modified: %s\n", buf);
            if (k->file.has_birth) {
                cpr_format_utc(k->file.birth_sec, k->file.birth_nsec, buf,
                           sizeof(buf));
                printf("    created: %s\n", buf);
            }
            printf("    links: %u\n", k->file.nlink);
        } else {
            printf("    file: none (anonymous memory)\n");
        }
        printf("    sampled pages: %u\n", k->nr_samples);
    }
    printf("  disks: %u\n", d->nr_disks);
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        const CprVmdescDisk *k = &d->disks[i];

        STR("disk", k->filename);
        STR("  node", k->node);
        STR("  driver", k->driver);
        printf("    size: %" PRIu64 "\n", k->size);
        printf("    read-only: %s\n",
               k->flags & CPR_DISK_READ_ONLY ? "yes" : "no");
        if (!k->has_file) {
            printf("    file: none (not checked)\n");
            continue;
        }
        printf("    device: %u:%u\n", major(k->dev), minor(k->dev));
        printf("    inode: %" PRIu64 "\n", k->ino);
        printf("    file size: %" PRIu64 "\n", k->file_size);
        cpr_format_utc(k->mtime_sec, k->mtime_nsec, buf, sizeof(buf));
        printf("    modified: %s\n", buf);
        cpr_format_utc(k->ctime_sec, k->ctime_nsec, buf, sizeof(buf));
        printf("    changed: %s\n", buf);
        printf("    sampled blocks: %u\n", k->nr_samples);
    }
#undef STR
}

/* The recorded disks, as "disks" of tool_add_vm()'s object. */
static void add_disks(JsonBuilder *b, const CprVmdesc *d)
{
    char buf[128];

    json_builder_set_member_name(b, "disks");
    json_builder_begin_array(b);
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        const CprVmdescDisk *k = &d->disks[i];

        json_builder_begin_object(b);
        report_add_clean(b, "filename", k->filename);
        report_add_clean(b, "node", k->node);
        report_add_clean(b, "driver", k->driver);
        report_add_u64(b, "size", k->size);
        json_builder_set_member_name(b, "read-only");
        json_builder_add_boolean_value(b, (k->flags & CPR_DISK_READ_ONLY) != 0);
        json_builder_set_member_name(b, "file");
        if (k->has_file) {
            json_builder_begin_object(b);
            report_add_u64(b, "device-major", major(k->dev));
            report_add_u64(b, "device-minor", minor(k->dev));
            report_add_u64(b, "inode", k->ino);
            report_add_u64(b, "size", k->file_size);
            cpr_format_utc(k->mtime_sec, k->mtime_nsec, buf, sizeof(buf));
            report_add_clean(b, "modified", buf);
            cpr_format_utc(k->ctime_sec, k->ctime_nsec, buf, sizeof(buf));
            report_add_clean(b, "changed", buf);
            report_add_u64(b, "sampled-blocks", k->nr_samples);
            json_builder_end_object(b);
        } else {
            json_builder_add_null_value(b);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

/* tool_add_media -- { "class", "detail" } as member @name. */
void tool_add_media(JsonBuilder *b, const char *name, uint32_t media,
                    const char *detail)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_object(b);
    report_add_clean(b, "class", cpr_media_name(media));
    report_add_clean(b, "detail", detail);
    json_builder_end_object(b);
}

/* tool_add_vm -- the VM description as a JSON object. */
void tool_add_vm(JsonBuilder *b, const CprVmdesc *d)
{
    char buf[128];

    json_builder_begin_object(b);
    report_add_u64(b, "description-version", d->version);
    report_add_hex(b, "seed", d->seed);
    report_add_clean(b, "qemu-version", d->qemu_version);
    report_add_clean(b, "kernel-release", d->kernel_release);
    report_add_clean(b, "machine", d->machine);
    report_add_clean(b, "cpu", d->cpu);
    json_builder_set_member_name(b, "arguments");
    json_builder_begin_array(b);
    for (size_t i = 0; i < d->argv_len; i += strlen(d->argv + i) + 1) {
        char *a = tool_clean(d->argv + i);

        json_builder_add_string_value(b, a);
        g_free(a);
    }
    json_builder_end_array(b);
    tool_add_media(b, "image-media", d->image_media, d->image_media_detail);
    json_builder_set_member_name(b, "ram-blocks");
    json_builder_begin_array(b);
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];

        json_builder_begin_object(b);
        report_add_clean(b, "name", k->name);
        report_add_u64(b, "size", k->size);
        report_add_u64(b, "flags", k->flags);
        json_builder_set_member_name(b, "shared");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_SHARED) != 0);
        json_builder_set_member_name(b, "pmem");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_PMEM) != 0);
        json_builder_set_member_name(b, "prealloc");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_PREALLOC) != 0);
        report_add_u64(b, "fd-offset", k->fd_offset);
        tool_add_media(b, "media", k->media, k->media_detail);
        json_builder_set_member_name(b, "file");
        if (k->has_file) {
            json_builder_begin_object(b);
            report_add_clean(b, "path", k->file.path);
            report_add_u64(b, "device-major", major(k->file.dev));
            report_add_u64(b, "device-minor", minor(k->file.dev));
            report_add_u64(b, "inode", k->file.ino);
            report_add_u64(b, "size", k->file.size);
            cpr_format_utc(k->file.mtime_sec, k->file.mtime_nsec, buf,
                       sizeof(buf));
            report_add_clean(b, "modified", buf);
            json_builder_set_member_name(b, "modified-sec");
            json_builder_add_int_value(b, k->file.mtime_sec);
            report_add_u64(b, "modified-nsec", k->file.mtime_nsec);
            if (k->file.has_birth) {
                cpr_format_utc(k->file.birth_sec, k->file.birth_nsec, buf,
                           sizeof(buf));
                report_add_clean(b, "created", buf);
                json_builder_set_member_name(b, "created-sec");
                json_builder_add_int_value(b, k->file.birth_sec);
                report_add_u64(b, "created-nsec", k->file.birth_nsec);
            }
            report_add_u64(b, "links", k->file.nlink);
            json_builder_end_object(b);
        } else {
            json_builder_add_null_value(b);
        }
        report_add_u64(b, "sampled-pages", k->nr_samples);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    add_disks(b, d);
    json_builder_end_object(b);
}
