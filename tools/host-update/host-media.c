/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host-media.h"
#include "media.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

gboolean host_cmd_is_kexec(const char *cmd)
{
    g_auto(GStrv) words = NULL;

    if (!g_shell_parse_argv(cmd, NULL, &words, NULL)) {
        return FALSE;
    }
    for (int i = 0; words[i]; i++) {
        const char *base = strrchr(words[i], '/');

        if (g_str_equal(base ? base + 1 : words[i], "kexec")) {
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean on_kexec_only(const struct stat *st)
{
    return cpr_pmem_region(st, "/sys", NULL, 0) == CPR_REGION_KEXEC_ONLY;
}

/*
 * A shared file mapping of /proc/PID/maps ("ADDR PERMS OFF MAJ:MIN INO
 * PATH"): on kexec-only pmem?  The file's device comes from the line; a
 * device DAX node's own device from stat (its mapping names devtmpfs).
 */
static gboolean mapping_kexec_only(const char *line, const char **path)
{
    char perms[8];
    unsigned maj, min;
    struct stat st = { .st_mode = S_IFREG };
    int n = 0;

    if (sscanf(line, "%*s %7s %*s %x:%x %*s %n", perms, &maj, &min, &n) < 3 ||
        n == 0 || strlen(perms) < 4 || perms[3] != 's' || line[n] != '/') {
        return FALSE;
    }
    *path = line + n;
    st.st_dev = makedev(maj, min);
    if (g_str_has_prefix(*path, "/dev/") && stat(*path, &st) < 0) {
        return FALSE;
    }
    return on_kexec_only(&st);
}

char *host_kexec_only_file(pid_t pid, const char *image)
{
    g_autofree char *maps = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *dir = g_path_get_dirname(image);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    struct stat st;

    if (stat(image, &st) == 0 ? on_kexec_only(&st)
                              : stat(dir, &st) == 0 && on_kexec_only(&st)) {
        return g_strdup_printf("its image %s", image);
    }
    if (!g_file_get_contents(maps, &text, NULL, NULL)) {
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        const char *path = NULL;

        if (mapping_kexec_only(lines[i], &path)) {
            return g_strdup_printf("its guest RAM %s", path);
        }
    }
    return NULL;
}
