/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "test-env.h"

#include <errno.h>
#include <glib/gstdio.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = g_getenv(name);

    return v && *v ? v : fallback;
}

const char *test_env_qemu(void)
{
    return env_or("CPR_QEMU", CPR_STOCK_QEMU);
}

const char *test_env_scheme(void)
{
    return env_or("CPR_SCHEME", "file");
}

char *test_env_uri(const char *path)
{
    return g_strdup_printf("%s:%s", test_env_scheme(), path);
}

char *test_env_mkdtemp(TestBase base)
{
    const char *dir = base == TEST_BASE_SHM
                      ? env_or("CPR_TEST_SHM", "/dev/shm")
                      : env_or("CPR_TEST_DISK", CPR_DEFAULT_DISK_BASE);
    char *tmpl = g_build_filename(dir, "cpr-test-XXXXXX", NULL);

    if (g_mkdir_with_parents(dir, 0755) < 0 || !g_mkdtemp(tmpl)) {
        g_error("cannot create a directory under %s: %s", dir, g_strerror(errno));
    }
    return tmpl;
}

void test_env_rmtree(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
            !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
            test_env_rmtree(path);
        } else {
            g_unlink(path);
        }
    }
    g_rmdir(dir);
}
