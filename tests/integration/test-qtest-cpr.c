/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-reboot without a guest OS: qtest pokes patterns into guest RAM (on a
 * shared memory-backend-file) and into RTC CMOS, the state goes through
 * SCHEME:PATH, and a fresh QEMU must see the same bytes.  RAM proves
 * x-ignore-shared kept the file mapping; CMOS proves device state was
 * saved and loaded.  A control case restores onto a fresh RAM file and
 * asserts the RAM check notices, so the check cannot pass vacuously.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>

#define RAM_SIZE     "256M"
#define BULK_ADDR    0x1000000ULL     /* 16 MiB */
#define BULK_LEN     (64 * 1024)
#define CMOS_FIRST   0x40             /* user bytes QEMU's pc_cmos_init and */
#define CMOS_COUNT   16               /* the RTC never write */

static const guint64 word_addrs[] = {
    0x1000, 0x7ffc, 0x200000, 0x4000000, 0xffffffc,   /* last word of 256 MiB */
};

static guint32 word_value(guint i)
{
    return 0xc0ffee00u ^ (i * 0x9e3779b9u);
}

static guint8 cmos_value(guint i)
{
    return 0xa5 ^ (i * 37);
}

static void fill_bulk(guint8 *buf)
{
    GRand *r = g_rand_new_with_seed(42);

    for (gsize i = 0; i < BULK_LEN; i++) {
        buf[i] = g_rand_int(r);
    }
    g_rand_free(r);
}

static void write_patterns(Qtest *qt)
{
    g_autofree guint8 *bulk = g_malloc(BULK_LEN);
    GError *err = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        qtest_writel(qt, word_addrs[i], word_value(i), &err);
        g_assert_no_error(err);
    }
    fill_bulk(bulk);
    qtest_b64write(qt, BULK_ADDR, bulk, BULK_LEN, &err);
    g_assert_no_error(err);
    qtest_memset(qt, BULK_ADDR + BULK_LEN, 4096, 0x5a, &err);
    g_assert_no_error(err);
    for (guint i = 0; i < CMOS_COUNT; i++) {
        halt_vm_cmos_write(qt, CMOS_FIRST + i, cmos_value(i));
    }
}

/* Number of RAM locations (words, bulk block, memset block) that differ. */
static guint ram_mismatches(Qtest *qt)
{
    g_autofree guint8 *want = g_malloc(BULK_LEN);
    g_autofree guint8 *got = g_malloc(BULK_LEN);
    guint8 set[4096], set_want[4096];
    GError *err = NULL;
    guint bad = 0;

    for (guint i = 0; i < G_N_ELEMENTS(word_addrs); i++) {
        guint32 v;

        qtest_readl(qt, word_addrs[i], &v, &err);
        g_assert_no_error(err);
        if (v != word_value(i)) {
            g_test_message("RAM 0x%" G_GINT64_MODIFIER "x: 0x%08x, want 0x%08x",
                           word_addrs[i], v, word_value(i));
            bad++;
        }
    }
    fill_bulk(want);
    qtest_b64read(qt, BULK_ADDR, got, BULK_LEN, &err);
    g_assert_no_error(err);
    bad += memcmp(want, got, BULK_LEN) != 0;
    memset(set_want, 0x5a, sizeof(set_want));
    qtest_memread(qt, BULK_ADDR + BULK_LEN, set, sizeof(set), &err);
    g_assert_no_error(err);
    bad += memcmp(set, set_want, sizeof(set)) != 0;
    return bad;
}

static guint cmos_mismatches(Qtest *qt)
{
    guint bad = 0;

    for (guint i = 0; i < CMOS_COUNT; i++) {
        guint8 v;

        v = halt_vm_cmos_read(qt, CMOS_FIRST + i);
        if (v != cmos_value(i)) {
            g_test_message("CMOS 0x%02x: 0x%02x, want 0x%02x",
                           CMOS_FIRST + i, v, cmos_value(i));
            bad++;
        }
    }
    return bad;
}

static GStrv qtest_args(const char *dir, const char *ram_name)
{
    return halt_vm_args(dir, ram_name, RAM_SIZE);
}

/*
 * @fresh_ram: restore onto a new, empty RAM file (control case: the RAM
 * is not in the stream).  pmem: refuses that unless told to.
 */
static void run_cycle(TestBase state_base, gboolean fresh_ram)
{
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *state_dir = state_base == TEST_BASE_SHM
                                 ? g_strdup(shm) : test_env_mkdtemp(state_base);
    g_autofree char *state = g_build_filename(state_dir, "vm.cpr", NULL);
    g_autofree char *uri = test_env_uri(state);
    g_auto(GStrv) args = qtest_args(shm, "ram");
    QemuProcOpts opts = {
        .binary = test_env_qemu(), .args = (const char *const *)args,
        .dir = shm, .name = "src", .qtest = TRUE,
    };
    g_autoptr(QemuProc) src = NULL;
    g_autoptr(QemuProc) dst = NULL;
    CprSample t;
    GError *err = NULL;

    g_test_message("qemu %s, uri %s", opts.binary, uri);
    src = qemu_proc_start(&opts, &err);
    g_assert_no_error(err);
    write_patterns(qemu_proc_qtest(src));
    g_assert_cmpuint(ram_mismatches(qemu_proc_qtest(src)), ==, 0);
    g_assert_cmpuint(cmos_mismatches(qemu_proc_qtest(src)), ==, 0);

    if (fresh_ram) {
        cpr_save(src, CPR_SETUP_SHARED, uri, &t, &err);
        g_assert_no_error(err);
        g_strfreev(args);
        args = qtest_args(shm, "ram-fresh");
        opts.args = (const char *const *)args;
        opts.name = "dst";
        if (g_str_equal(test_env_scheme(), "pmem")) {
            /* The image is bound to its RAM: refused, then overridden. */
            dst = cpr_restore(&opts, CPR_SETUP_SHARED, uri, &t, &err);
            g_assert_null(dst);
            g_assert_nonnull(err);
            g_test_message("refused as it must be: %s", err->message);
            g_assert_nonnull(strstr(err->message, "ram-fresh"));
            g_clear_error(&err);
            g_setenv("CPR_PMEM_ALLOW", "ram", TRUE);
        }
        dst = cpr_restore(&opts, CPR_SETUP_SHARED, uri, &t, &err);
        g_unsetenv("CPR_PMEM_ALLOW");
    } else {
        dst = cpr_cycle(src, CPR_SETUP_SHARED, uri, "dst", &t, &err);
    }
    g_assert_no_error(err);
    g_test_message("pause %.2f ms, dst qmp-ready %.1f ms, restore %.2f ms",
                   t.pause_us / 1e3, t.qmp_ready_us / 1e3, t.incoming_us / 1e3);

    g_assert_cmpuint(cmos_mismatches(qemu_proc_qtest(dst)), ==, 0);
    if (fresh_ram) {
        g_assert_cmpuint(ram_mismatches(qemu_proc_qtest(dst)), ==,
                         G_N_ELEMENTS(word_addrs) + 2);
    } else {
        g_assert_cmpuint(ram_mismatches(qemu_proc_qtest(dst)), ==, 0);
    }

    g_clear_pointer(&dst, qemu_proc_free);
    g_clear_pointer(&src, qemu_proc_free);
    if (state_base != TEST_BASE_SHM) {
        test_env_rmtree(state_dir);
    }
    test_env_rmtree(shm);
}

/* A failed restore must come back as an error carrying QEMU's reason. */
static void test_restore_missing_state(void)
{
    g_autofree char *shm = test_env_mkdtemp(TEST_BASE_SHM);
    g_autofree char *state = g_build_filename(shm, "absent.cpr", NULL);
    g_autofree char *uri = test_env_uri(state);
    g_auto(GStrv) args = qtest_args(shm, "ram");
    QemuProcOpts opts = {
        .binary = test_env_qemu(), .args = (const char *const *)args,
        .dir = shm, .name = "dst", .qtest = TRUE,
    };
    g_autoptr(QemuProc) dst = NULL;
    g_autoptr(GError) err = NULL;
    CprSample t;

    dst = cpr_restore(&opts, CPR_SETUP_SHARED, uri, &t, &err);
    g_assert_null(dst);
    g_assert_nonnull(err);
    g_test_message("expected failure: %s", err->message);
    g_assert_nonnull(strstr(err->message, "absent.cpr"));
    test_env_rmtree(shm);
}

static void test_state_on_shm(void)
{
    run_cycle(TEST_BASE_SHM, FALSE);
}

static void test_state_on_disk(void)
{
    run_cycle(TEST_BASE_DISK, FALSE);
}

static void test_control_fresh_ram(void)
{
    run_cycle(TEST_BASE_SHM, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qtest-cpr/state-on-shm", test_state_on_shm);
    g_test_add_func("/qtest-cpr/state-on-disk", test_state_on_disk);
    g_test_add_func("/qtest-cpr/control-fresh-ram", test_control_fresh_ram);
    g_test_add_func("/qtest-cpr/restore-missing-state", test_restore_missing_state);
    return g_test_run();
}
