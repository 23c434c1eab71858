/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the cpr-pmem commands. */
#ifndef CPR_TOOL_H
#define CPR_TOOL_H

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct CprReader;
struct CprVmdesc;

/* Exit codes, documented in --help. */
enum {
    TOOL_OK = 0,
    TOOL_REFUSED = 1,   /* not an image, corrupt, would not load */
    TOOL_USAGE = 2,     /* bad command line, or the file cannot be opened */
    TOOL_NO_OUTCOME = 3, /* wait: no save recorded, or --timeout passed */
};

int tool_info(const char *path, bool json);

/*
 * tool-open.c: @path read-only (following symlinks), only if it is a
 * regular file; *@st describes it.  TOOL_NOT_REGULAR if it is not (it
 * was never opened), -1 with errno if it cannot be opened.
 */
#define TOOL_NOT_REGULAR (-2)
int tool_open_ro(const char *path, struct stat *st);

/* tool-vm.c: the saved VM (VM description) and media classes. */
char *tool_clean(const char *s);
void tool_add_u64(JsonBuilder *b, const char *name, uint64_t v);
void tool_print_media(const char *label, uint32_t media, const char *detail);
void tool_print_vm(const struct CprVmdesc *d);
void tool_add_media(JsonBuilder *b, const char *name, uint32_t media,
                    const char *detail);
void tool_add_vm(JsonBuilder *b, const struct CprVmdesc *d);
/* The media class of the image file at @path now. */
int tool_image_media(const char *path, char *detail, size_t size);
int tool_check_reboot(const char *path, struct CprReader *r, bool kexec);

/* tool-exec.c: the exec: helper (docs/exec-helper.md). */
bool tool_id_valid(const char *id);
int tool_save(const char *path, const char *id);
int tool_load(const char *path);
/* @timeout_s < 0: no limit. */
int tool_wait(const char *path, const char *id, int64_t timeout_s);
/* The last exec: save attempt, for info (nothing if none recorded). */
void tool_print_exec_status(const char *path);
void tool_add_exec_status(JsonBuilder *b, const char *path);

#endif
