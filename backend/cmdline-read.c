/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading a QEMU's argument list: this process's own, or another's
 * under its /proc/PID directory, bounded as the description holds it.
 */
#include "cmdline.h"
#include "vmdesc.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *test_args;
static size_t test_len;
static bool test_set;

void cpr_cmdline_set_for_tests(const char *args, size_t len)
{
    free(test_args);
    test_args = NULL;
    test_len = 0;
    test_set = args != NULL;
    if (args) {
        test_args = malloc(len ? len : 1);
        if (test_args) {
            memcpy(test_args, args, len);
            test_len = len;
        }
    }
}

/* Cut @len back to what the description can hold, at an argument end. */
static size_t bound(const char *args, size_t len)
{
    size_t args_n = 0, end = 0;

    for (size_t i = 0; i < len && i < CPR_VMDESC_MAX_ARGV; i++) {
        if (args[i] == 0) {
            if (++args_n > CPR_VMDESC_MAX_ARGS) {
                break;
            }
            end = i + 1;
        }
    }
    return end;
}

/* The argument list @f holds, bounded (cpr_cmdline_own); closes @f. */
static int read_args(FILE *f, char **args, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    int ret = -1;

    do {
        if (n == cap) {
            char *nb;

            if (cap >= CPR_VMDESC_MAX_ARGV) {
                break;
            }
            nb = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!nb) {
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (!ferror(f)) {
        *args = buf;
        *len = bound(buf, n);
        buf = NULL;
        ret = 0;
    }
out:
    free(buf);
    fclose(f);
    return ret;
}

/* cpr_cmdline_prepare()'s copy of /proc/self/cmdline, if it read. */
static char *own_args;
static size_t own_len;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

static void read_own(void)
{
    FILE *f = fopen("/proc/self/cmdline", "re");

    if (f && read_args(f, &own_args, &own_len) < 0) {
        own_args = NULL;
    }
}

void cpr_cmdline_prepare(void)
{
    pthread_once(&own_once, read_own);
}

int cpr_cmdline_own(char **args, size_t *len)
{
    char *buf;

    *args = NULL;
    *len = 0;
    if (test_set) {
        buf = malloc(test_len ? test_len : 1);
        if (!buf) {
            return -1;
        }
        memcpy(buf, test_args, test_len);
        *args = buf;
        *len = bound(buf, test_len);
        return 0;
    }
    cpr_cmdline_prepare();
    if (!own_args) {
        return -1;
    }
    buf = malloc(own_len ? own_len : 1);
    if (!buf) {
        return -1;
    }
    memcpy(buf, own_args, own_len);
    *args = buf;
    *len = own_len;
    return 0;
}

/* names -- whether comma list @list (up to its end) holds @name */
static bool names(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1
                                                     : NULL) {
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0')) {
            return true;
        }
    }
    return false;
}

int cpr_cmdline_incoming(const char *scheme, bool *incoming, bool *preloads)
{
    static const char opt[] = "x-preload-transports=";
    char *args;
    size_t len;

    *incoming = *preloads = false;
    if (cpr_cmdline_own(&args, &len) < 0) {
        return -1;
    }
    /* bound() ended the list at an argument's end. */
    for (size_t i = 0; i < len; i += strlen(args + i) + 1) {
        const char *a = args + i + (args[i] == '-' && args[i + 1] == '-');
        const char *v = strstr(a, opt);

        *incoming = *incoming || !strcmp(a, "-incoming") ||
                    !strncmp(a, "-incoming=", 10);
        *preloads = *preloads ||
                    (scheme && v && names(v + sizeof(opt) - 1, scheme));
    }
    free(args);
    return 0;
}

bool cpr_cmdline_preloads_incoming(const char *scheme)
{
    bool incoming, preloads;

    return cpr_cmdline_incoming(scheme, &incoming, &preloads) == 0 &&
           incoming && preloads;
}

int cpr_cmdline_read_at(int proc_fd, char **args, size_t *len)
{
    int fd = openat(proc_fd, "cmdline", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;

    *args = NULL;
    *len = 0;
    if (!f) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return read_args(f, args, len);
}
