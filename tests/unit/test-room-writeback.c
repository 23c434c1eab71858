/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The room a restore makes for the next save (issue 15, item 7): on a
 * disk filesystem it must not dirty the page cache (populating it with
 * write faults had writeback write 1.25 times the payload: 335,568,896
 * bytes for a 256 MiB image), and the file grows to a 2 MiB multiple
 * (FORMAT.md).  The bytes this process dirties are its write_bytes in
 * /proc/self/io, charged when a page is dirtied (proc(5)); the room's
 * thread is one of its threads.  On tmpfs nothing is charged, and only
 * the size is checked.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "format.h"
#include "hostile-util.h"
#include "placement.h"
#include "unit-util.h"

#define PAYLOAD (256 * MiB)

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* This process's write_bytes. */
static uint64_t write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "re");
    unsigned long long v = 0;
    char line[128];
    gboolean found = FALSE;

    g_assert_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        found |= sscanf(line, "write_bytes: %llu", &v) == 1;
    }
    fclose(f);
    g_assert_true(found);
    return v;
}

static void test_room_writes_nothing(void)
{
    char *path = tu_path("room-writeback");
    uint8_t *a = tu_pattern(PAYLOAD, 15);
    CprPlacement next = cpr_place_new(CPR_PAYLOAD_AREA, PAYLOAD);
    uint64_t want = next.base + cpr_place_expected(PAYLOAD), before, written;
    uint64_t last, size = 0;
    struct statfs sfs;
    double t0, stable;

    g_assert_cmpint(statfs(tu_dir(), &sfs), ==, 0);
    tu_save(path, a, PAYLOAD);
    before = write_bytes();
    tu_assert_loads(path, a, PAYLOAD);      /* in_close starts the room */
    /* The room is there, and nothing more is written for a second. */
    t0 = stable = hu_now();
    last = write_bytes();
    while (hu_now() - t0 < 60.0) {
        uint64_t now = write_bytes();

        size = hu_file_size(path);
        if (now != last) {
            last = now;
            stable = hu_now();
        } else if (size >= want && hu_now() - stable > 1.0) {
            break;
        }
        g_usleep(20000);
    }
    tu_quiesce();
    written = write_bytes() - before;
    printf("# %s (%s): the restore and its room wrote %llu bytes for a "
           "%llu-byte payload (%.2f%%); the file is %llu bytes "
           "(2 MiB x %llu + %llu)\n", tu_dir(),
           sfs.f_type == TMPFS_MAGIC ? "tmpfs" : "a disk filesystem",
           (unsigned long long)written, (unsigned long long)PAYLOAD,
           100.0 * (double)written / PAYLOAD, (unsigned long long)size,
           (unsigned long long)(size / CPR_ALIGN),
           (unsigned long long)(size % CPR_ALIGN));
    g_assert_cmpuint(size, >=, want);
    g_assert_cmpuint(size % CPR_ALIGN, ==, 0);
    g_assert_cmpuint(written, <, PAYLOAD / 10);
    /* And the next save uses the room. */
    tu_save(path, a + 1, PAYLOAD - 1);
    tu_assert_loads(path, a + 1, PAYLOAD - 1);
    g_free(a);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/room/writes-nothing", test_room_writes_nothing);
    return g_test_run();
}
