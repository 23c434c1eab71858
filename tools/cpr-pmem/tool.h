/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cpr-pmem commands, as its main() runs them. */
#ifndef CPR_TOOL_H
#define CPR_TOOL_H

#include <stdbool.h>
#include <stdint.h>

struct CprReader;

/* Exit codes, documented in --help. */
enum {
    TOOL_OK = 0,
    TOOL_REFUSED = 1,   /* not an image, corrupt, would not load */
    TOOL_USAGE = 2,     /* bad command line, or the file cannot be opened */
    TOOL_NO_OUTCOME = 3, /* wait: no save recorded, or --timeout passed */
};

/* tool-info.c */
int tool_info(const char *path, bool json);

/* check-reboot.c: check --for=reboot|kexec of an image that loads. */
int tool_check_reboot(const char *path, struct CprReader *r, bool kexec);

/* The exec: helper (docs/exec-helper.md): exec-save.c, exec-load.c,
 * exec-wait.c. */
bool tool_id_valid(const char *id);
int tool_save(const char *path, const char *id);
int tool_load(const char *path);
/* @timeout_s < 0: no limit. */
int tool_wait(const char *path, const char *id, int64_t timeout_s);

#endif
