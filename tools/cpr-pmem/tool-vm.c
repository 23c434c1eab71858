/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The saved VM as cpr-pmem shows it (info) and judges it (check
 * --for=reboot): what the VM description of the loadable generation
 * records, and what survives a host reboot.
 */
#include "tool.h"
#include "media.h"
#include "metadata.h"
#include "reader.h"
#include "vmdesc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/*
 * tool_clean -- text from an image, safe on a terminal and in JSON: what
 * is not a printable character (ASCII controls, DEL, C1 controls such as
 * the 8-bit CSI, other non-printable code points, bytes that are not
 * UTF-8) is shown escaped, as \xNN or \u{N}.  g_free() it.
 */
char *tool_clean(const char *s)
{
    GString *o = g_string_new(NULL);

    for (const char *p = s ? s : ""; *p;) {
        gunichar c = g_utf8_get_char_validated(p, -1);

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(o, "\\x%02x", (unsigned char)*p++);
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            g_string_append_printf(o, "\\x%02x", (unsigned)c);
        } else if (c >= 0x80 && !g_unichar_isprint(c)) {
            g_string_append_printf(o, "\\u{%x}", (unsigned)c);
        } else {
            g_string_append_len(o, p, g_utf8_next_char(p) - p);
        }
        p = g_utf8_next_char(p);
    }
    return g_string_free(o, FALSE);
}

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

void tool_print_media(const char *label, uint32_t media, const char *detail)
{
    char *d = tool_clean(detail);

    printf("%s: %s (%s)\n", label, cpr_media_name(media), d);
    g_free(d);
}

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

static void add_str(JsonBuilder *b, const char *name, const char *v);

/* The recorded disks, as "disks" of tool_add_vm()'s object. */
static void add_disks(JsonBuilder *b, const CprVmdesc *d)
{
    char buf[128];

    json_builder_set_member_name(b, "disks");
    json_builder_begin_array(b);
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        const CprVmdescDisk *k = &d->disks[i];

        json_builder_begin_object(b);
        add_str(b, "filename", k->filename);
        add_str(b, "node", k->node);
        add_str(b, "driver", k->driver);
        tool_add_u64(b, "size", k->size);
        json_builder_set_member_name(b, "read-only");
        json_builder_add_boolean_value(b, (k->flags & CPR_DISK_READ_ONLY) != 0);
        json_builder_set_member_name(b, "file");
        if (k->has_file) {
            json_builder_begin_object(b);
            tool_add_u64(b, "device-major", major(k->dev));
            tool_add_u64(b, "device-minor", minor(k->dev));
            tool_add_u64(b, "inode", k->ino);
            tool_add_u64(b, "size", k->file_size);
            cpr_format_utc(k->mtime_sec, k->mtime_nsec, buf, sizeof(buf));
            add_str(b, "modified", buf);
            cpr_format_utc(k->ctime_sec, k->ctime_nsec, buf, sizeof(buf));
            add_str(b, "changed", buf);
            tool_add_u64(b, "sampled-blocks", k->nr_samples);
            json_builder_end_object(b);
        } else {
            json_builder_add_null_value(b);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void add_str(JsonBuilder *b, const char *name, const char *v)
{
    char *c = tool_clean(v);

    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, c);
    g_free(c);
}

void tool_add_media(JsonBuilder *b, const char *name, uint32_t media,
                    const char *detail)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_object(b);
    add_str(b, "class", cpr_media_name(media));
    add_str(b, "detail", detail);
    json_builder_end_object(b);
}

void tool_add_vm(JsonBuilder *b, const CprVmdesc *d)
{
    char buf[128];

    json_builder_begin_object(b);
    tool_add_u64(b, "description-version", d->version);
    snprintf(buf, sizeof(buf), "0x%016" PRIx64, d->seed);
    add_str(b, "seed", buf);
    add_str(b, "qemu-version", d->qemu_version);
    add_str(b, "kernel-release", d->kernel_release);
    add_str(b, "machine", d->machine);
    add_str(b, "cpu", d->cpu);
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
        add_str(b, "name", k->name);
        tool_add_u64(b, "size", k->size);
        tool_add_u64(b, "flags", k->flags);
        json_builder_set_member_name(b, "shared");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_SHARED) != 0);
        json_builder_set_member_name(b, "pmem");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_PMEM) != 0);
        json_builder_set_member_name(b, "prealloc");
        json_builder_add_boolean_value(b, (k->flags & CPR_RAM_PREALLOC) != 0);
        tool_add_u64(b, "fd-offset", k->fd_offset);
        tool_add_media(b, "media", k->media, k->media_detail);
        json_builder_set_member_name(b, "file");
        if (k->has_file) {
            json_builder_begin_object(b);
            add_str(b, "path", k->file.path);
            tool_add_u64(b, "device-major", major(k->file.dev));
            tool_add_u64(b, "device-minor", minor(k->file.dev));
            tool_add_u64(b, "inode", k->file.ino);
            tool_add_u64(b, "size", k->file.size);
            cpr_format_utc(k->file.mtime_sec, k->file.mtime_nsec, buf,
                       sizeof(buf));
            add_str(b, "modified", buf);
            json_builder_set_member_name(b, "modified-sec");
            json_builder_add_int_value(b, k->file.mtime_sec);
            tool_add_u64(b, "modified-nsec", k->file.mtime_nsec);
            if (k->file.has_birth) {
                cpr_format_utc(k->file.birth_sec, k->file.birth_nsec, buf,
                           sizeof(buf));
                add_str(b, "created", buf);
                json_builder_set_member_name(b, "created-sec");
                json_builder_add_int_value(b, k->file.birth_sec);
                tool_add_u64(b, "created-nsec", k->file.birth_nsec);
            }
            tool_add_u64(b, "links", k->file.nlink);
            json_builder_end_object(b);
        } else {
            json_builder_add_null_value(b);
        }
        tool_add_u64(b, "sampled-pages", k->nr_samples);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    add_disks(b, d);
    json_builder_end_object(b);
}

int tool_image_media(const char *path, char *detail, size_t size)
{
    struct stat st;
    int fd = tool_open_ro(path, &st);
    int media;

    if (fd < 0) {
        snprintf(detail, size, fd == TOOL_NOT_REGULAR ? "not a regular file"
                                                      : "cannot open");
        return CPR_MEDIA_VOLATILE;
    }
    media = cpr_media_of_file(fd, detail, size);
    close(fd);
    return media;
}

/*
 * Whether RAM block @k is on kexec-only (e820) pmem: as recorded, or, for
 * a record saved before that was told apart, its file as it is now (if
 * it is still the one recorded).
 */
static bool block_kexec_only(const CprVmdescBlock *k)
{
    struct stat st;

    if (cpr_media_kexec_only(k->media_detail)) {
        return true;
    }
    return k->has_file && k->file.path && *k->file.path == '/' &&
           stat(k->file.path, &st) == 0 && (uint64_t)st.st_dev == k->file.dev &&
           (uint64_t)st.st_ino == k->file.ino &&
           cpr_pmem_region(&st, "/sys", NULL, 0) == CPR_REGION_KEXEC_ONLY;
}

/*
 * check --for=reboot and --for=kexec: the image loads, and it and every
 * RAM block it recorded are on media that outlive the kernel -- for a
 * reboot, not on kexec-only (e820) pmem either.  Reasons on stderr,
 * notes on stdout.
 */
int tool_check_reboot(const char *path, CprReader *r, bool kexec)
{
    const CprVmdesc *d = cpr_reader_vmdesc(r);
    const char *down = kexec ? "a kexec" : "a host reboot";
    char detail[CPR_VMDESC_MAX_DETAIL * 2];
    int media = tool_image_media(path, detail, sizeof(detail));
    bool lost = false, sync = false, e820 = false;

    /* A committed image is durable on a disk filesystem too: the
     * transport synced it. */
    if (media == CPR_MEDIA_VOLATILE) {
        fprintf(stderr, "%s: would not survive %s: the image is "
                "on volatile memory (%s)\n", path, down, detail);
        lost = true;
    } else if (cpr_media_kexec_only(detail)) {
        e820 = true;
        if (!kexec) {
            fprintf(stderr, "%s: would not survive a host reboot, only a "
                    "kexec: the image is on DRAM-backed pmem (an e820 "
                    "region, memmap=)\n", path);
            lost = true;
        }
    }
    if (!d) {
        printf("%s: note: the image (record format %u) did not record its "
               "guest RAM: whether that survives is not known\n", path,
               cpr_reader_record(r)->version);
    }
    for (uint32_t i = 0; d && i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];
        char *name = tool_clean(k->name), *file = tool_clean(
            k->has_file ? k->file.path : "");
        char *det = tool_clean(k->media_detail);

        if (k->media == CPR_MEDIA_VOLATILE) {
            fprintf(stderr, "%s: would not survive %s: the guest "
                    "RAM of block %s%s%s is on volatile memory (%s)\n", path,
                    down, name, *file ? " in " : "", file, det);
            lost = true;
        } else if (block_kexec_only(k)) {
            e820 = true;
            if (!kexec) {
                fprintf(stderr, "%s: would not survive a host reboot, only "
                        "a kexec: the guest RAM of block %s%s%s is on "
                        "DRAM-backed pmem (an e820 region, memmap=)\n", path,
                        name, *file ? " in " : "", file);
                lost = true;
            }
        }
        if (k->media == CPR_MEDIA_PAGE_CACHE) {
            sync = true;
        }
        g_free(name);
        g_free(file);
        g_free(det);
    }
    if (lost) {
        return TOOL_REFUSED;
    }
    printf("%s: survives %s (image: %s%s)\n", path, down,
           cpr_media_name((uint32_t)media), d ? "" : "; RAM not recorded");
    if (e820) {
        printf("%s: note: on DRAM-backed pmem (e820): a kexec into a kernel "
               "with the same memmap= keeps it, a cold reboot or a power "
               "loss does not\n", path);
    }
    if (sync) {
        printf("%s: note: guest RAM is in the page cache of a disk "
               "filesystem: it survives once written back, so run sync (or "
               "syncfs) after QEMU quits and before the reboot\n", path);
    }
    return TOOL_OK;
}
