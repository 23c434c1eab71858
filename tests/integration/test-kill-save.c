/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SIGKILL QEMU at random moments of a pmem: save and check that a fresh
 * QEMU restores a whole generation: the last committed one, or the new
 * one if the kill came after its commit, never a mix and never nothing.
 *
 * Each generation g fills all of guest RAM with the byte g and sets a
 * CMOS byte to g, and saves without x-ignore-shared, so the stream is as
 * big as RAM: the kills land in the payload copy, in the growth of the
 * file and around the commit.  The destination starts on an empty RAM
 * file, so RAM can only come from the image and must agree with CMOS.
 */
#include "cpr-cycle.h"
#include "halt-vm.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <string.h>

#define RAM_SIZE   "128M"
#define RAM_BYTES  (128u << 20)
#define CMOS_BYTE  0x42
#define KILLS      20
/* Below 1 MiB lie the VGA window and the BIOS ROM, not RAM. */
#define RAM_FIRST  (1u << 20)

typedef struct {
    char *dir;
    char *uri;
    GStrv src_args, dst_args;
    GRand *rand;
    guint committed;        /* generation byte the image must hold */
    guint restored_old, restored_new;
} Ctx;

static QemuProc *start(Ctx *c, GStrv args, const char *name, gboolean incoming)
{
    g_autoptr(JsonObject) bw = json_object_new();
    GError *err = NULL;
    QemuProc *p;

    p = halt_vm_start(c->dir, args, name, incoming ? "defer" : NULL, &err);
    g_assert_no_error(err);
    /* The default 128 MiB/s cap would make every save take a second. */
    json_object_set_int_member(bw, "max-bandwidth", G_GINT64_CONSTANT(1) << 40);
    qmp_run(qemu_proc_qmp(p), "migrate-set-parameters", bw, &err);
    g_assert_no_error(err);
    return p;
}

static void fill_generation(QemuProc *p, guint g)
{
    Qtest *qt = qemu_proc_qtest(p);
    GError *err = NULL;

    qtest_memset(qt, RAM_FIRST, RAM_BYTES - RAM_FIRST, g, &err);
    g_assert_no_error(err);
    halt_vm_cmos_write(qt, CMOS_BYTE, g);
}

/* Save generation @g; kill after @kill_us unless it is negative. */
static gint64 save(Ctx *c, guint g, gint64 kill_us)
{
    g_autoptr(QemuProc) src = start(c, c->src_args, "src", FALSE);
    GError *err = NULL;
    gint64 t0;

    fill_generation(src, g);
    t0 = g_get_monotonic_time();
    qmp_migrate(qemu_proc_qmp(src), c->uri, &err);
    g_assert_no_error(err);
    if (kill_us >= 0) {
        g_usleep(kill_us);
        qemu_proc_kill(src);
        return kill_us;
    }
    qmp_wait_migration(qemu_proc_qmp(src), 120000, NULL, &err);
    g_assert_no_error(err);
    return g_get_monotonic_time() - t0;
}

/* Restore onto empty RAM; returns the generation byte found. */
static guint restore(Ctx *c)
{
    g_autoptr(QemuProc) dst = NULL;
    Qtest *qt;
    guint8 cmos = 0, probe[4096];
    g_autofree char *fresh = g_build_filename(c->dir, "ram-dst", NULL);
    GError *err = NULL;

    g_unlink(fresh);
    dst = start(c, c->dst_args, "dst", TRUE);
    qmp_migrate_incoming(qemu_proc_qmp(dst), c->uri, &err);
    g_assert_no_error(err);
    qmp_wait_status(qemu_proc_qmp(dst), "running", 60000, &err);
    g_assert_no_error(err);

    qt = qemu_proc_qtest(dst);
    cmos = halt_vm_cmos_read(qt, CMOS_BYTE);
    /* RAM and device state must come from the same generation. */
    for (guint i = 0; i < 16; i++) {
        guint64 addr = g_rand_int_range(c->rand, RAM_FIRST / sizeof(probe),
                                        RAM_BYTES / sizeof(probe)) *
                       sizeof(probe);

        qtest_memread(qt, addr, probe, sizeof(probe), &err);
        g_assert_no_error(err);
        for (guint j = 0; j < sizeof(probe); j++) {
            if (probe[j] != cmos) {
                g_error("RAM at 0x%" G_GINT64_MODIFIER "x holds generation "
                        "%u, CMOS says %u", addr + j, probe[j], cmos);
            }
        }
    }
    return cmos;
}

static void test_kill_during_save(void)
{
    Ctx c = { 0 };
    gint64 full_us;

    c.dir = test_env_mkdtemp(TEST_BASE_SHM);
    c.uri = g_strdup_printf("pmem:%s/vm.cpr", c.dir);
    c.src_args = halt_vm_args(c.dir, "ram-src", RAM_SIZE);
    c.dst_args = halt_vm_args(c.dir, "ram-dst", RAM_SIZE);
    c.rand = g_rand_new_with_seed(g_test_rand_int());

    full_us = save(&c, 1, -1);
    c.committed = 1;
    g_assert_cmpuint(restore(&c), ==, 1);
    g_test_message("uninterrupted %u MiB save: %.1f ms", RAM_BYTES >> 20,
                   full_us / 1e3);

    for (guint k = 0; k < KILLS; k++) {
        guint g = c.committed + 1;
        /* Spread over the whole save, a little past its usual end. */
        gint64 at = g_rand_int_range(c.rand, 0, full_us * 5 / 4 + 1);
        guint found;

        save(&c, g, at);
        found = restore(&c);
        g_test_message("kill at %.1f ms during generation %u: restored %u",
                       at / 1e3, g, found);
        if (found == g) {
            c.restored_new++;
            c.committed = g;
            /* Saves get faster once the image has grown: aim earlier. */
            full_us = MIN(full_us, at);
        } else {
            g_assert_cmpuint(found, ==, c.committed);
            c.restored_old++;
        }
    }
    g_test_message("kills: %u performed, %u restored the previous "
                   "generation, %u the new one, 0 refused or mixed",
                   KILLS, c.restored_old, c.restored_new);

    test_env_rmtree(c.dir);
    g_rand_free(c.rand);
    g_strfreev(c.src_args);
    g_strfreev(c.dst_args);
    g_free(c.uri);
    g_free(c.dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kill-save/sigkill-during-save", test_kill_during_save);
    return g_test_run();
}
