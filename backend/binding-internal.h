/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by binding.c (save) and binding-check.c (restore). */
#ifndef CPR_BINDING_INTERNAL_H
#define CPR_BINDING_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "vmdesc.h"

/* readlink of /proc/self/fd/@fd, "" if that fails; malloc()ed. */
char *cpr_fd_path(int fd);

/* The file's birth time, if its filesystem keeps one. */
bool cpr_file_birth(int fd, int64_t *sec, uint32_t *nsec);

/*
 * fstat of a RAM block's file as the binding records and checks it.  A
 * character device (device DAX, /dev/daxX.Y) is the device itself:
 * st_dev is its st_rdev, st_ino 0 (devtmpfs makes a new node each boot),
 * st_size its size in sysfs (/sys/dev/char/M:m/size; 0 if none), no
 * times (the sampled page hashes carry its contents).
 */
int cpr_ram_fstat(int fd, struct stat *st);

/* Where block @k lives, for messages: its file's path, or NULL. */
const char *cpr_block_where(const CprVmdescBlock *k);

/* Lines of a refusal or of warnings; oom: one could not be added. */
typedef struct CprLines {
    char **v;
    size_t n;
    bool oom;
} CprLines;

void cpr_lines_add(CprLines *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cpr_lines_free(CprLines *l);

#endif
