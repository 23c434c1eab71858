/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a test run is parameterised by, read from the environment so the
 * same binaries run against stock QEMU (file:) and the patched one (pmem:),
 * on tmpfs and on a real filesystem.
 */
#ifndef HARNESS_TEST_ENV_H
#define HARNESS_TEST_ENV_H

#include <glib.h>

/* $CPR_QEMU, default the stock_qemu meson option. */
const char *test_env_qemu(void);
/* $CPR_SCHEME, default "file". */
const char *test_env_scheme(void);
/* "SCHEME:PATH" for a state file. */
char *test_env_uri(const char *path);

typedef enum {
    TEST_BASE_SHM,    /* $CPR_TEST_SHM, default /dev/shm */
    TEST_BASE_DISK,   /* $CPR_TEST_DISK, default <build>/test-tmp */
} TestBase;

/* Fresh private directory under the chosen base; aborts the test on failure. */
char *test_env_mkdtemp(TestBase base);
/* rm -rf, for the directories above. */
void test_env_rmtree(const char *dir);

#endif
