/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The disk binding's record and compare logic (backend/disk-binding.c,
 * BINDING.md "Disks") on real files in $CPR_TEST_DIR, without QEMU: what
 * each change to a disk file between a save and a restore yields, the
 * disks that cannot be checked, old descriptions, and the description's
 * disk entries through encode and decode.  Prints the cost per disk.
 */
#include "disk-binding.h"
#include "image-file.h"
#include "vmdesc.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static GPtrArray *warnings;

static void warn(void *opaque, const char *msg)
{
    (void)opaque;
    g_ptr_array_add(warnings, g_strdup(msg));
}

static const CprHost host = { "10.2.2", warn, NULL };
/* The image a save records the disks for: named in its messages only. */
static const CprImage vm_image = { .fd = -1, .path = (char *)"/x/vm.cpr" };

static gboolean warned(const char *what)
{
    for (guint i = 0; i < warnings->len; i++) {
        if (strstr(g_ptr_array_index(warnings, i), what)) {
            return TRUE;
        }
    }
    return FALSE;
}

static char *dir;

static char *path_of(const char *name)
{
    return g_strdup_printf("%s/%s", dir, name);
}

/* @size bytes of pseudo-random data (no block alike). */
static void make_file(const char *path, size_t size)
{
    g_autofree guint8 *buf = g_malloc(size);
    GRand *r = g_rand_new_with_seed(size);

    for (size_t i = 0; i < size; i++) {
        buf[i] = (guint8)g_rand_int(r);
    }
    g_rand_free(r);
    g_assert_true(g_file_set_contents(path, (char *)buf, size, NULL));
}

static void write_at(const char *path, off_t off, const char *bytes)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, bytes, strlen(bytes), off), ==,
                    (ssize_t)strlen(bytes));
    close(fd);
}

typedef struct Fixture {
    CprVmdesc *d;
    CprDisk disks[4];
    QemuTransportVm qemu;
    CprVm vm;
    CprLines l;
} Fixture;

/* @f's VM: the @n disks of @disks. */
static void set_disks(Fixture *f, const CprDisk *disks, uint32_t n)
{
    f->qemu = cpr_vm_abi(NULL, 0, NULL, NULL, disks, n);
    f->vm = (CprVm){ &f->qemu, NULL, 0 };
}

static CprDisk file_disk(const char *path)
{
    return (CprDisk){ .node_name = "#block123", .filename = path,
                      .driver = "file", .size = 0,
                      .flags = CPR_DISK_PROTOCOL };
}

/* A description with @n disks recorded (the save); warnings cleared. */
static void save(Fixture *f, uint32_t n)
{
    char *err = NULL;

    f->d = calloc(1, sizeof(*f->d));
    f->d->version = CPR_VMDESC_VERSION;
    f->d->seed = 0x1234;
    set_disks(f, f->disks, n);
    g_assert_cmpint(cpr_disk_record(f->d, &f->vm, &host, &vm_image, &err),
                    ==, 0);
    g_assert_null(err);
    memset(&f->l, 0, sizeof(f->l));
}

/* The restore's lines, joined. */
static char *check(Fixture *f)
{
    GString *s = g_string_new("");

    cpr_lines_free(&f->l);
    memset(&f->l, 0, sizeof(f->l));
    cpr_disk_check(&f->l, f->d, &f->vm, &host);
    g_assert_false(f->l.oom);
    for (size_t i = 0; i < f->l.n; i++) {
        g_string_append_printf(s, "%s%s", i ? "\n" : "", f->l.v[i]);
    }
    g_test_message("lines: %s", s->str);
    return g_string_free(s, FALSE);
}

static void done(Fixture *f)
{
    cpr_lines_free(&f->l);
    cpr_vmdesc_free(f->d);
    g_ptr_array_set_size(warnings, 0);
}

static void test_unchanged(void)
{
    g_autofree char *p = path_of("same.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 64 * 4096);
    f.disks[0] = file_disk(p);
    /* a format node on top is not a file of its own */
    f.disks[1] = (CprDisk){ "d0", p, "raw", 0, 0 };
    save(&f, 2);
    g_assert_cmpuint(f.d->nr_disks, ==, 1);
    g_assert_true(f.d->disks[0].has_file);
    g_assert_cmpuint(f.d->disks[0].nr_samples, ==, 64);
    lines = check(&f);
    g_assert_cmpstr(lines, ==, "");
    g_assert_cmpuint(warnings->len, ==, 0);
    done(&f);
}

/* Contents changed and the mtime put back: the ctime and the samples. */
static void test_rewrite_times_kept(void)
{
    g_autofree char *p = path_of("rewrite.raw");
    g_autofree char *lines = NULL;
    struct stat st;
    struct timespec ts[2];
    Fixture f = { 0 };

    make_file(p, 16 * 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    g_assert_cmpint(stat(p, &st), ==, 0);
    g_usleep(20000);
    write_at(p, 5 * 4096 + 100, "changed");
    ts[0] = st.st_atim;
    ts[1] = st.st_mtim;
    g_assert_cmpint(utimensat(AT_FDCWD, p, ts, 0), ==, 0);
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "rewrite.raw: changed since the save "
                            "(ctime"));
    g_assert_nonnull(strstr(lines, "rewrite.raw: 1 of 16 sampled 4 KiB "
                            "blocks differ"));
    done(&f);
}

static void test_rewrite(void)
{
    g_autofree char *p = path_of("rewrite2.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 16 * 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    g_usleep(20000);
    write_at(p, 0, "x");
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "disk "));
    g_assert_nonnull(strstr(lines, "rewrite2.raw: modified since the save"));
    done(&f);
}

static void replace_with(const char *p, const char *change)
{
    g_autofree char *tmp = g_strdup_printf("%s.new", p);
    g_autofree char *bytes = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(p, &bytes, &len, NULL));
    g_assert_true(g_file_set_contents(tmp, bytes, len, NULL));
    if (change) {
        write_at(tmp, 3 * 4096, change);
    }
    g_assert_cmpint(rename(tmp, p), ==, 0);
}

static void test_copy(void)
{
    g_autofree char *p = path_of("copy.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 8 * 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    replace_with(p, NULL);
    lines = check(&f);
    g_assert_cmpstr(lines, ==, "");
    g_assert_true(warned("copy.raw: another file than the one the VM was "
                         "saved with"));
    g_assert_true(warned("taken for a copy"));
    done(&f);
}

static void test_replaced(void)
{
    g_autofree char *p = path_of("replaced.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 8 * 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    replace_with(p, "other");
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "replaced.raw: not the file the VM was "
                            "saved with"));
    g_assert_nonnull(strstr(lines, "its contents differ"));
    done(&f);
}

static void test_truncated_and_gone(void)
{
    g_autofree char *p = path_of("short.raw");
    g_autofree char *q = path_of("gone.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 8 * 4096);
    make_file(q, 4096);
    f.disks[0] = file_disk(p);
    f.disks[1] = file_disk(q);
    save(&f, 2);
    g_assert_cmpint(truncate(p, 7 * 4096), ==, 0);
    g_assert_cmpint(unlink(q), ==, 0);
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "short.raw: 28672 bytes, the saved VM's "
                            "were 32768 (truncated since the save)"));
    g_assert_nonnull(strstr(lines, "gone.raw: No such file or directory"));
    done(&f);
}

/* A recorded path that is now a FIFO is refused without opening it: a
 * path from the image never opens a FIFO or a character device. */
static void test_not_regular(void)
{
    g_autofree char *p = path_of("fifo.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    g_assert_cmpint(unlink(p), ==, 0);
    g_assert_cmpint(mkfifo(p, 0600), ==, 0);
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "fifo.raw: neither a file nor a block "
                            "device (not opened)"));
    g_unlink(p);
    done(&f);
}

/* The destination's disks against the recorded ones. */
static void test_other_disks(void)
{
    g_autofree char *p = path_of("a.raw");
    g_autofree char *q = path_of("b.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 4096);
    make_file(q, 4096);
    f.disks[0] = file_disk(p);
    f.disks[0].node_name = "disk0";
    save(&f, 1);
    f.disks[0] = file_disk(q);
    lines = check(&f);
    g_assert_nonnull(strstr(lines, "a.raw (node disk0): the saved VM used "
                            "it, this VM does not"));
    g_assert_nonnull(strstr(lines, "b.raw: not a disk of the saved VM"));
    done(&f);
}

/* A network disk: warned about at the save and once at the restore. */
static void test_not_a_file(void)
{
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    f.disks[0] = (CprDisk){ "#block1", "nbd://10.0.0.1:10809/disk", "nbd",
                            1 << 20, CPR_DISK_PROTOCOL };
    f.disks[1] = (CprDisk){ "#block2", "nbd://10.0.0.1:10809/two", "nbd",
                            1 << 20, CPR_DISK_PROTOCOL };
    save(&f, 2);
    g_assert_true(warned("is not a file (driver nbd): a restore cannot "
                         "check"));
    g_assert_cmpuint(f.d->nr_disks, ==, 2);
    g_assert_false(f.d->disks[0].has_file);
    g_ptr_array_set_size(warnings, 0);
    lines = check(&f);
    g_assert_cmpstr(lines, ==, "");
    g_assert_cmpuint(warnings->len, ==, 1);
    g_assert_true(warned("not checked, not files: nbd://10.0.0.1:10809/disk "
                         "(nbd), nbd://10.0.0.1:10809/two (nbd)"));
    done(&f);
}

static void test_old_description(void)
{
    g_autofree char *p = path_of("old.raw");
    g_autofree char *lines = NULL;
    Fixture f = { 0 };

    make_file(p, 4096);
    f.disks[0] = file_disk(p);
    save(&f, 1);
    f.d->version = 1;
    lines = check(&f);
    g_assert_cmpstr(lines, ==, "");
    g_assert_true(warned("did not record the VM's disks"));
    done(&f);
}

/* Disk entries through the description's encoder and decoder. */
static void test_round_trip(void)
{
    g_autofree char *p = path_of("rt.raw");
    CprVmdesc *out = NULL;
    const char *why;
    uint8_t *buf;
    size_t len;
    Fixture f = { 0 };

    make_file(p, 100 * 4096 + 7);
    f.disks[0] = file_disk(p);
    f.disks[1] = (CprDisk){ "n1", "nbd://h/x", "nbd", 5, CPR_DISK_PROTOCOL |
                            CPR_DISK_READ_ONLY };
    save(&f, 2);
    f.d->qemu_version = strdup("10.2.2");
    f.d->kernel_release = strdup("6.1");
    f.d->machine = strdup("m");
    f.d->cpu = strdup("c");
    f.d->image_media = CPR_MEDIA_PAGE_CACHE;
    buf = cpr_vmdesc_encode(f.d, &len);
    g_assert_nonnull(buf);
    g_assert_cmpint(cpr_vmdesc_decode(buf, len, &out, &why), ==,
                    CPR_VMDESC_OK);
    g_assert_cmpuint(out->nr_disks, ==, 2);
    for (uint32_t i = 0; i < 2; i++) {
        const CprVmdescDisk *a = &f.d->disks[i], *b = &out->disks[i];

        g_assert_cmpstr(a->node, ==, b->node);
        g_assert_cmpstr(a->filename, ==, b->filename);
        g_assert_cmpstr(a->driver, ==, b->driver);
        g_assert_cmpuint(a->size, ==, b->size);
        g_assert_cmpuint(a->flags, ==, b->flags);
        g_assert_cmpint(a->has_file, ==, b->has_file);
        g_assert_cmpuint(a->ino, ==, b->ino);
        g_assert_cmpuint(a->dev, ==, b->dev);
        g_assert_cmpuint(a->file_size, ==, b->file_size);
        g_assert_cmpint(a->mtime_sec, ==, b->mtime_sec);
        g_assert_cmpuint(a->mtime_nsec, ==, b->mtime_nsec);
        g_assert_cmpint(a->ctime_sec, ==, b->ctime_sec);
        g_assert_cmpuint(a->ctime_nsec, ==, b->ctime_nsec);
        g_assert_cmpuint(a->nr_samples, ==, b->nr_samples);
        g_assert_cmpmem(a->samples, a->nr_samples * sizeof(a->samples[0]),
                        b->samples, b->nr_samples * sizeof(b->samples[0]));
    }
    cpr_vmdesc_free(out);
    /* a version-1 description skips the entry as unknown */
    buf[8] = 1;
    g_assert_cmpint(cpr_vmdesc_decode(buf, len, &out, &why), ==,
                    CPR_VMDESC_OK);
    g_assert_cmpuint(out->nr_disks, ==, 0);
    cpr_vmdesc_free(out);
    buf[8] = 2;
    /* a truncated sample list is malformed, not read past */
    for (size_t cut = 16; cut < len; cut += 97) {
        g_assert_cmpint(cpr_vmdesc_decode(buf, cut, &out, &why), !=,
                        CPR_VMDESC_OK);
    }
    free(buf);
    done(&f);
}

/* What the pause and in_open pay per disk (printed, not asserted). */
static void test_cost(void)
{
    enum { N = 8, ROUNDS = 21 };
    char *paths[N];
    double rec[ROUNDS], chk[ROUNDS];
    Fixture f = { 0 };
    CprDisk disks[N];

    for (int i = 0; i < N; i++) {
        g_autofree char *name = g_strdup_printf("cost%d.raw", i);

        paths[i] = path_of(name);
        make_file(paths[i], 16 << 20);
        disks[i] = file_disk(paths[i]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        gint64 t0, t1, t2;
        char *err = NULL;

        f.d = calloc(1, sizeof(*f.d));
        f.d->version = CPR_VMDESC_VERSION;
        f.d->seed = (uint64_t)r;
        set_disks(&f, disks, N);
        t0 = g_get_monotonic_time();
        g_assert_cmpint(cpr_disk_record(f.d, &f.vm, &host, &vm_image, &err), ==, 0);
        t1 = g_get_monotonic_time();
        cpr_disk_check(&f.l, f.d, &f.vm, &host);
        t2 = g_get_monotonic_time();
        g_assert_cmpuint(f.l.n, ==, 0);
        rec[r] = (double)(t1 - t0) / N;
        chk[r] = (double)(t2 - t1) / N;
        done(&f);
        memset(&f, 0, sizeof(f));
    }
    for (int i = 0; i < ROUNDS; i++) {
        for (int j = i + 1; j < ROUNDS; j++) {
            if (rec[j] < rec[i]) {
                double t = rec[i]; rec[i] = rec[j]; rec[j] = t;
            }
            if (chk[j] < chk[i]) {
                double t = chk[i]; chk[i] = chk[j]; chk[j] = t;
            }
        }
    }
    g_test_message("per 16 MiB disk file (page cache), median of %d: "
                   "record (pause) %.1f us, check (in_open) %.1f us",
                   ROUNDS, rec[ROUNDS / 2], chk[ROUNDS / 2]);
    printf("# disk binding per disk: record %.1f us, check %.1f us\n",
           rec[ROUNDS / 2], chk[ROUNDS / 2]);
    /* Cold: the files' pages dropped from the page cache first, as after
     * a host reboot (in_open) -- the sampled blocks come from the disk. */
    {
        gint64 t0, t1;
        char *err = NULL;

        f.d = calloc(1, sizeof(*f.d));
        f.d->version = CPR_VMDESC_VERSION;
        f.d->seed = 7;
        set_disks(&f, disks, N);
        g_assert_cmpint(cpr_disk_record(f.d, &f.vm, &host, &vm_image, &err), ==, 0);
        for (int i = 0; i < N; i++) {
            int fd = open(paths[i], O_RDONLY);

            g_assert_cmpint(fd, >=, 0);
            g_assert_cmpint(fdatasync(fd), ==, 0);
            g_assert_cmpint(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED),
                            ==, 0);
            close(fd);
        }
        t0 = g_get_monotonic_time();
        cpr_disk_check(&f.l, f.d, &f.vm, &host);
        t1 = g_get_monotonic_time();
        g_assert_cmpuint(f.l.n, ==, 0);
        printf("# disk binding per disk, page cache dropped: check %.1f us\n",
               (double)(t1 - t0) / N);
        done(&f);
    }
    for (int i = 0; i < N; i++) {
        g_unlink(paths[i]);
        g_free(paths[i]);
    }
}

int main(int argc, char **argv)
{
    const char *base = g_getenv("CPR_TEST_DIR");
    int ret;

    g_test_init(&argc, &argv, NULL);
    warnings = g_ptr_array_new_with_free_func(g_free);
    dir = g_build_filename(base ? base : g_get_tmp_dir(),
                           "disk-record-XXXXXX", NULL);
    g_assert_nonnull(g_mkdtemp(dir));
    g_test_add_func("/disk-record/unchanged", test_unchanged);
    g_test_add_func("/disk-record/rewrite", test_rewrite);
    g_test_add_func("/disk-record/rewrite-times-kept",
                    test_rewrite_times_kept);
    g_test_add_func("/disk-record/copy", test_copy);
    g_test_add_func("/disk-record/replaced", test_replaced);
    g_test_add_func("/disk-record/truncated-and-gone",
                    test_truncated_and_gone);
    g_test_add_func("/disk-record/not-regular", test_not_regular);
    g_test_add_func("/disk-record/other-disks", test_other_disks);
    g_test_add_func("/disk-record/not-a-file", test_not_a_file);
    g_test_add_func("/disk-record/old-description", test_old_description);
    g_test_add_func("/disk-record/round-trip", test_round_trip);
    g_test_add_func("/disk-record/cost", test_cost);
    ret = g_test_run();
    {
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
            g_autofree char *p = path_of(name);

            g_unlink(p);
        }
        if (d) {
            g_dir_close(d);
        }
        g_rmdir(dir);
    }
    g_free(dir);
    g_ptr_array_unref(warnings);
    return ret;
}
