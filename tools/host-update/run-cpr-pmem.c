/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem, run as a separate program: cpr-host-update makes, checks,
 * waits for and invalidates images only through it.
 */
#include "host-update.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

char *cpr_pmem_path;
const char *cpr_pmem_for_reboot;

/* find_cpr_pmem -- $CPR_PMEM, beside this tool, or in PATH. */
char *find_cpr_pmem(const char *self)
{
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    g_autofree char *dir = g_path_get_dirname(exe ? exe : self);
    const char *env = g_getenv("CPR_PMEM");
    /* Installed side by side; in the build tree, tools/cpr-pmem/. */
    const char *rel[] = { "cpr-pmem", "../cpr-pmem/cpr-pmem", NULL };

    if (env && *env) {
        return g_strdup(env);
    }
    for (int i = 0; rel[i]; i++) {
        g_autofree char *p = g_build_filename(dir, rel[i], NULL);

        if (g_file_test(p, G_FILE_TEST_IS_REGULAR) &&
            g_file_test(p, G_FILE_TEST_IS_EXECUTABLE)) {
            return g_canonicalize_filename(p, NULL);
        }
    }
    return g_find_program_in_path("cpr-pmem");
}

/* run_cpr_pmem -- run cpr-pmem, its messages to our stderr: its exit code. */
int run_cpr_pmem(const char *cmd, const char *opt, const char *image,
                 char **out)
{
    const char *argv[] = { cpr_pmem_path, cmd, opt ? opt : image,
                           opt ? image : NULL, NULL };
    g_autoptr(GError) err = NULL;
    g_autofree char *sout = NULL, *serr = NULL;
    int status;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                      &sout, &serr, &status, &err)) {
        note("%s: %s", cpr_pmem_path, err->message);
        return 2;
    }
    fputs(serr, stderr);
    if (out) {
        *out = g_strchomp(g_steal_pointer(&sout));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/*
 * The check this cpr-pmem has for what the reboot command does: "check
 * --for=kexec" (DRAM-backed pmem survives it) for a kexec, else "check
 * --for=reboot"; NULL if it has neither.
 */
const char *cpr_pmem_check_for(gboolean kexec)
{
    const char *argv[] = { cpr_pmem_path, "--help", NULL };
    g_autofree char *sout = NULL;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, &sout, NULL, NULL, NULL) ||
        !strstr(sout, "--for=")) {
        return NULL;
    }
    return kexec && strstr(sout, "--for=kexec") ? "--for=kexec"
                                                : "--for=reboot";
}
