/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "metadata.h"
#include "cmdline.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

uint64_t cpr_realtime_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cpr_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cpr_format_utc(int64_t sec, uint32_t nsec, char *buf, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;
    size_t n;

    if ((int64_t)t != sec || !gmtime_r(&t, &tm) ||
        !(n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))) {
        snprintf(buf, size, "(out of range)");
        return;
    }
    snprintf(buf + n, size - n, ".%09u UTC", nsec % 1000000000u);
}

void cpr_format_utc_ns(uint64_t ns, char *buf, size_t size)
{
    cpr_format_utc((int64_t)(ns / 1000000000u), (uint32_t)(ns % 1000000000u),
                   buf, size);
}

static bool is_incoming(const char *arg, bool *takes_value)
{
    const char *a = arg;

    if (a[0] != '-') {
        return false;
    }
    a += a[1] == '-' ? 2 : 1;
    if (strcmp(a, "incoming") == 0) {
        *takes_value = true;
        return true;
    }
    *takes_value = false;
    return strncmp(a, "incoming=", 9) == 0;
}

uint64_t cpr_cmdline_fingerprint(const char *args, size_t len)
{
    XXH3_state_t *st = XXH3_createState();
    size_t i = 0;
    bool skip_next = false;
    uint64_t fp;

    if (!st) {
        return 0;
    }
    XXH3_64bits_reset(st);
    while (i < len) {
        const char *arg = args + i;
        size_t n = strnlen(arg, len - i);
        bool takes_value;

        /* Hash each kept argument with its terminator so that
         * "a b" and "ab" differ. */
        if (skip_next) {
            skip_next = false;
        } else if (is_incoming(arg, &takes_value)) {
            skip_next = takes_value;
        } else {
            XXH3_64bits_update(st, arg, n);
            XXH3_64bits_update(st, "", 1);
        }
        i += n + 1;
    }
    fp = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return fp;
}

void cpr_metadata_collect(CprMetadata *md, const char *qemu_version)
{
    struct utsname u;

    memset(md, 0, sizeof(*md));
    md->ctime_ns = cpr_realtime_ns();
    snprintf(md->qemu_version, sizeof(md->qemu_version), "%s",
             qemu_version ? qemu_version : "");
    if (uname(&u) == 0) {
        snprintf(md->kernel_release, sizeof(md->kernel_release), "%s",
                 u.release);
    }
    cpr_cmdline_own(&md->argv, &md->argv_len);
    md->cmdline_fp = cpr_cmdline_fingerprint(md->argv ? md->argv : "",
                                             md->argv_len);
}

int cpr_metadata_set_argv(CprMetadata *md, const char *args, size_t len)
{
    char *copy = malloc(len ? len : 1);

    if (!copy) {
        return -1;
    }
    memcpy(copy, args, len);
    free(md->argv);
    md->argv = copy;
    md->argv_len = len;
    md->cmdline_fp = cpr_cmdline_fingerprint(copy, len);
    return 0;
}

void cpr_metadata_free(CprMetadata *md)
{
    free(md->argv);
    md->argv = NULL;
    md->argv_len = 0;
}
