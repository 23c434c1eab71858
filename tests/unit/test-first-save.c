/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A VM's first save, into an image that does not exist yet (issue 18):
 * out_open does what must happen before the VM stops and no more.  The
 * image gets its header's blocks only, nothing is populated before the
 * stream starts (the stream allocates and populates as it goes; on a
 * disk filesystem, all but a first MiB), the
 * populator's thread reads the RAM pages the commit samples once it
 * does (only where they are not in memory: no thread for RAM on tmpfs),
 * and the commit samples the guest's RAM without faulting its
 * pages in.  The save still commits and loads, and a save
 * into the image it made keeps the warm-up of a stream like the last.
 * An image made by "cpr-pmem create" is warmed up as a new one when the
 * RAM stays in place.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "hostile-util.h"
#include "format.h"
#include "placement.h"
#include "populate.h"
#include "unit-util.h"

#define STREAM (300 * 1024)
#define RAM (16 * MiB)

static gboolean on_tmpfs(const char *dir)
{
    struct statfs fs;

    g_assert_cmpint(statfs(dir, &fs), ==, 0);
    return fs.f_type == TMPFS_MAGIC;
}

/* The blocks a file holds, in bytes. */
static uint64_t allocated(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (uint64_t)st.st_blocks * 512;
}

/* The stream @buf, written in pieces of 64 KiB. */
static void write_stream(QemuTransportOut *t, const uint8_t *buf,
                         size_t len)
{
    const QemuTransportOps *ops = tu_ops();
    char *err = NULL;

    for (size_t done = 0; done < len; done += 64 * 1024) {
        struct iovec iov = { (void *)(buf + done), MIN(64 * 1024,
                                                      len - done) };

        g_assert_cmpint(ops->out_writev(t, &iov, 1, &err), ==,
                        (ssize_t)iov.iov_len);
    }
    g_assert_null(err);
}

/* A VM whose guest RAM (@ram, a new, sparse file) stays in place. */
typedef struct RamVm {
    char *path;
    int fd;
    void *host;
    QemuTransportRamBlock block;
    QemuTransportVm vm;
} RamVm;

static void ram_vm_init(RamVm *r)
{
    r->path = tu_path("guest-ram");
    r->fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    g_assert_cmpint(r->fd, >=, 0);
    g_assert_cmpint(ftruncate(r->fd, RAM), ==, 0);
    r->host = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    g_assert_true(r->host != MAP_FAILED);
    r->block = (QemuTransportRamBlock){
        .name = "pc.ram", .host = r->host, .size = RAM, .fd = r->fd,
        .fd_offset = 0, .flags = QEMU_TRANSPORT_RAM_SHARED,
    };
    r->vm = *tu_vm();
    r->vm.ram = &r->block;
    r->vm.nr_ram = 1;
    r->vm.ram_block_size = sizeof(r->block);
}

static void ram_vm_free(RamVm *r)
{
    munmap(r->host, RAM);
    close(r->fd);
    g_free(r->path);
}

static void test_new_image(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("first");
    uint8_t *a = tu_pattern(STREAM, 31);
    CprPopulatorStats s0, s1, s2;
    QemuTransportOut *t;
    QemuTransportIn *in;
    struct iovec iov;
    char *err = NULL;
    uint8_t *got;
    RamVm r;
    /* What a disk filesystem's first save makes ready before the stop. */
    uint64_t first = on_tmpfs(tu_dir()) ? 0 : MiB;
    /* A RAM file on tmpfs (here beside the image) is in memory: the
     * binding's job has nothing to read ahead, so there is no job and
     * no thread; on a disk filesystem both. */
    gboolean ram_in_memory = on_tmpfs(tu_dir());

    ram_vm_init(&r);
    tu_quiesce();
    cpr_populator_stats(&s0);
    t = ops->out_open(path, &r.vm, &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    cpr_populator_stats(&s1);
    g_test_message("after out_open: %" PRIu64 " bytes allocated, %" PRIu64
                   " populated, goal %" PRIu64, allocated(path),
                   s1.populated - s0.populated, s1.last_goal);
    /*
     * The header's blocks, not the initial size's (8 MiB before), and
     * nothing populated before the VM stops (the stream's first 256 KiB
     * allocated), nothing for a thread to populate (not the initial
     * size's 6 MiB): the stream does it as it goes.  On a disk
     * filesystem, a first MiB of it.  The thread is
     * there for the binding's job, when it has one.
     */
    g_assert_cmpuint(allocated(path), <=, first + 512 * 1024);
    g_assert_cmpuint(hu_file_size(path), ==, CPR_INITIAL_SIZE);
    g_assert_cmpuint(s1.populated - s0.populated, ==, first);
    g_assert_cmpuint(s1.threads, ==, s0.threads + !ram_in_memory);
    g_assert_cmpuint(s1.last_goal, ==, CPR_PAYLOAD_AREA + first);

    write_stream(t, a, STREAM);
    /* The stream woke the thread, which runs the binding's job (the RAM
     * block's sampled pages) first: wait for it, up to a minute. */
    for (int i = 0; !ram_in_memory && i < 60000; i++) {
        cpr_populator_stats(&s2);
        if (s2.jobs > s1.jobs) {
            break;
        }
        g_usleep(1000);
    }
    cpr_populator_stats(&s2);
    g_assert_cmpuint(s2.jobs, ==, s1.jobs + !ram_in_memory);
    g_assert_cmpint(ops->out_commit(t, &r.vm, &err), ==, 0);
    g_assert_null(err);
    ops->out_close(t);
    cpr_populator_stats(&s2);
    g_test_message("after the save: %" PRIu64 " bytes allocated, %" PRIu64
                   " populated, %" PRIu64 " jobs", allocated(path),
                   s2.populated - s1.populated, s2.jobs - s1.jobs);
    /* I5: the payload was allocated before its stores, and populated
     * (by the thread or the stores' own need()). */
    g_assert_cmpuint(allocated(path), >=, STREAM);
    g_assert_cmpuint(s2.populated - s0.populated, >=, STREAM);
    /* Sampled, not faulted in: the guest's RAM file is still all hole
     * (on tmpfs a fault on a hole of a shared mapping allocates it). */
    g_assert_cmpuint(allocated(r.path), ==, 0);

    /* It loads, bound to that RAM, and streams what was saved. */
    in = ops->in_open(path, &r.vm, &err);
    g_assert_null(err);
    g_assert_nonnull(in);
    got = g_malloc0(STREAM + 1);
    iov = (struct iovec){ got, STREAM + 1 };
    g_assert_cmpint(ops->in_readv(in, &iov, 1, &err), ==, STREAM);
    g_assert_cmpmem(got, STREAM, a, STREAM);
    ops->in_close(in);
    tu_quiesce();
    g_free(got);
    ram_vm_free(&r);
    g_free(a);
    g_free(path);
}

/* The next save into that image expects a stream like the last one and
 * has it populated before the VM stops, as before. */
static void test_second_save(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("second");
    uint8_t *a = tu_pattern(STREAM, 32), *b = tu_pattern(STREAM, 33);
    CprPopulatorStats s0, s1;
    QemuTransportOut *t;
    char *err = NULL;

    tu_save(path, a, STREAM);
    tu_quiesce();
    cpr_populator_stats(&s0);
    t = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(t);
    cpr_populator_stats(&s1);
    g_test_message("second out_open populated %" PRIu64 " bytes",
                   s1.populated - s0.populated);
    g_assert_cmpuint(s1.populated - s0.populated, >=,
                     cpr_place_expected(STREAM));
    write_stream(t, b, STREAM);
    g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, 0);
    ops->out_close(t);
    tu_assert_loads(path, b, STREAM);
    g_free(a);
    g_free(b);
    g_free(path);
}

/*
 * A VM's first save into an image made for it ("cpr-pmem create"), no
 * last stream: with its RAM in place the stream is device state, and
 * the warm-up before the stop is a new image's (nothing populated on
 * tmpfs, a first MiB on a disk filesystem), not the whole image's; a
 * stream that carries the RAM (no RAM block left in place) gets all of
 * it, as before.
 */
static void test_created_image(void)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *a = tu_pattern(STREAM, 34);
    uint64_t first = on_tmpfs(tu_dir()) ? 0 : MiB;
    char *err = NULL;
    RamVm r;

    ram_vm_init(&r);
    for (int in_place = 0; in_place < 2; in_place++) {
        char *path = tu_path(in_place ? "created-ram" : "created-stream");
        char *cmd = g_strdup_printf("'%s' create --size=8M '%s'",
                                    CPR_PMEM_TOOL, path);
        const QemuTransportVm *vm = in_place ? &r.vm : tu_vm();
        CprPopulatorStats s0, s1;
        QemuTransportOut *t;
        uint64_t populated;

        g_assert_cmpint(system(cmd), ==, 0);
        tu_quiesce();
        cpr_populator_stats(&s0);
        t = ops->out_open(path, vm, &err);
        g_assert_null(err);
        g_assert_nonnull(t);
        cpr_populator_stats(&s1);
        populated = s1.populated - s0.populated;
        g_test_message("created image, RAM %s: %" PRIu64 " bytes populated "
                       "before the stop", in_place ? "in place" :
                       "in the stream", populated);
        if (in_place) {
            g_assert_cmpuint(populated, ==, first);
        } else {
            g_assert_cmpuint(populated, ==,
                             hu_file_size(path) - CPR_PAYLOAD_AREA);
        }
        write_stream(t, a, STREAM);
        g_assert_cmpint(ops->out_commit(t, vm, &err), ==, 0);
        g_assert_null(err);
        ops->out_close(t);
        if (!in_place) {
            tu_assert_loads(path, a, STREAM);
        }
        g_free(cmd);
        g_free(path);
    }
    ram_vm_free(&r);
    g_free(a);
}

int main(int argc, char **argv)
{
    tu_test_init(&argc, &argv);
    tu_add_isolated("/first-save/new-image", test_new_image);
    tu_add_isolated("/first-save/second-save", test_second_save);
    tu_add_isolated("/first-save/created-image", test_created_image);
    return g_test_run();
}
