/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image is bound to its VM (issue 9): through the ABI, as QEMU calls
 * it, with RAM blocks this test maps itself (MAP_SHARED, as QEMU maps
 * memory-backend-file,share=on) on the medium of the run (tmpfs or
 * ext4).  Every mismatch is refused before a byte loads, naming the file
 * and the reason; what may differ loads; CPR_PMEM_ALLOW overrides.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <xxhash.h>

#include "binding.h"
#include "binding-early.h"
#include "fingerprint.h"
#include "cmdline.h"
#include "format.h"
#include "hostile-util.h"
#include "reader.h"
#include "room.h"
#include "unit-util.h"
#include "vmdesc.h"

#define PAGE 4096u
#define RAM_SIZE (8 * MiB)
#define STREAM_LEN 100000

/* One RAM block as QEMU would describe it, and the VM around it. */
typedef struct Ram {
    char *path;
    int fd;
    uint8_t *host;
    uint64_t map_len;
    QemuTransportRamBlock block;
} Ram;

typedef struct Vm {
    QemuTransportRamBlock blocks[4];
    QemuTransportVm vm;
} Vm;

static uint8_t *stream;

/* Fill [0, len) of @host with pages that differ per page and @seed. */
static void fill(uint8_t *host, uint64_t len, uint32_t seed)
{
    for (uint64_t off = 0; off < len; off += PAGE) {
        uint8_t *p = tu_pattern(PAGE, seed * 100003u + (uint32_t)(off / PAGE));

        memcpy(host + off, p, PAGE);
        g_free(p);
    }
}

/* Map @size bytes of @path at @offset (the file is created or grown to
 * @file_size if that is bigger than it is). */
static void ram_map(Ram *r, const char *path, uint64_t file_size,
                    uint64_t offset, uint64_t size)
{
    struct stat st;

    memset(r, 0, sizeof(*r));
    r->path = g_strdup(path);
    r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(r->fd, >=, 0);
    g_assert_cmpint(fstat(r->fd, &st), ==, 0);
    if ((uint64_t)st.st_size < file_size) {
        g_assert_cmpint(ftruncate(r->fd, (off_t)file_size), ==, 0);
    }
    r->map_len = size;
    r->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
                   (off_t)offset);
    g_assert_true(r->host != MAP_FAILED);
    r->block = (QemuTransportRamBlock){
        .name = "pc.ram", .host = r->host, .size = size, .fd = r->fd,
        .fd_offset = offset, .flags = QEMU_TRANSPORT_RAM_SHARED,
    };
}

/* A new RAM file of RAM_SIZE bytes with guest contents @seed. */
static void ram_new(Ram *r, const char *name, uint32_t seed)
{
    char *path = tu_path(name);

    unlink(path);
    ram_map(r, path, RAM_SIZE, 0, RAM_SIZE);
    fill(r->host, RAM_SIZE, seed);
    g_free(path);
}

/* What a restarted QEMU does: map the file again. */
static void ram_reopen(Ram *r, const Ram *from)
{
    ram_map(r, from->path, 0, 0, RAM_SIZE);
}

static void ram_anon(Ram *r, uint32_t seed)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    r->map_len = RAM_SIZE;
    r->host = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    g_assert_true(r->host != MAP_FAILED);
    if (seed) {
        fill(r->host, RAM_SIZE, seed);
    }
    r->block = (QemuTransportRamBlock){
        .name = "pc.ram", .host = r->host, .size = RAM_SIZE, .fd = -1,
        .flags = QEMU_TRANSPORT_RAM_SHARED,
    };
}

/*
 * RAM on a character device, as QEMU maps device DAX (mem-path=/dev/daxX.Y,
 * share=on): /dev/zero stands in for one here (a shared mapping of it is
 * memory of its own, zero at first: what a zeroed device DAX shows).  A
 * device without mmap (/dev/full) gets anonymous memory beside its fd.
 */
static void ram_device(Ram *r, const char *dev, uint32_t seed)
{
    memset(r, 0, sizeof(*r));
    r->path = g_strdup(dev);
    r->fd = open(dev, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(r->fd, >=, 0);
    r->map_len = RAM_SIZE;
    r->host = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   r->fd, 0);
    if (r->host == MAP_FAILED) {
        r->host = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    g_assert_true(r->host != MAP_FAILED);
    if (seed) {
        fill(r->host, RAM_SIZE, seed);
    }
    r->block = (QemuTransportRamBlock){
        .name = "pc.ram", .host = r->host, .size = RAM_SIZE, .fd = r->fd,
        .flags = QEMU_TRANSPORT_RAM_SHARED,
    };
}

static void ram_close(Ram *r)
{
    if (r->host) {
        munmap(r->host, r->map_len);
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    g_free(r->path);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

/* A VM with the blocks given (NULL-terminated). */
static const QemuTransportVm *vm_of(Vm *v, const char *machine,
                                    const char *cpu, ...)
{
    va_list ap;
    const Ram *r;
    uint32_t n = 0;

    va_start(ap, cpu);
    while ((r = va_arg(ap, const Ram *))) {
        v->blocks[n++] = r->block;
    }
    va_end(ap);
    v->vm = (QemuTransportVm){ v->blocks, n, machine, cpu,
                               sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };
    return &v->vm;
}

static const QemuTransportVm *vm1(Vm *v, const Ram *r)
{
    return vm_of(v, TU_MACHINE, TU_CPU, r, NULL);
}

static void save(const char *image, const QemuTransportVm *vm)
{
    const QemuTransportOps *ops = tu_ops();
    struct iovec iov[2] = {
        { stream, 777 }, { stream + 777, STREAM_LEN - 777 },
    };
    QemuTransportOut *t;
    char *err = NULL;

    t = ops->out_open(image, vm, &err);
    if (!t) {
        g_error("out_open: %s", err);
    }
    g_assert_cmpint(ops->out_writev(t, iov, 2, &err), ==, STREAM_LEN);
    if (ops->out_commit(t, vm, &err) < 0) {
        g_error("out_commit: %s", err);
    }
    ops->out_close(t);
}

/* in_open with @vm; NULL if it loads (and the stream is the one saved),
 * else the message (g_free() it). */
static char *restore(const char *image, const QemuTransportVm *vm)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(STREAM_LEN + 1);
    QemuTransportIn *t;
    char *err = NULL, *ret;
    size_t done = 0;
    ssize_t n;

    t = ops->in_open(image, vm, &err);
    if (!t) {
        g_assert_nonnull(err);
        ret = g_strdup(err);
        free(err);
        g_free(got);
        g_test_message("refused: %s", ret);
        return ret;
    }
    do {
        struct iovec iov = { got + done, STREAM_LEN + 1 - done };

        n = ops->in_readv(t, &iov, 1, &err);
        g_assert_cmpint(n, >=, 0);
        done += (size_t)n;
    } while (n > 0 && done <= STREAM_LEN);
    g_assert_cmpuint(done, ==, STREAM_LEN);
    g_assert_true(memcmp(got, stream, STREAM_LEN) == 0);
    ops->in_close(t);
    g_free(got);
    return NULL;
}

static void assert_loads(const char *image, const QemuTransportVm *vm)
{
    char *err = restore(image, vm);

    if (err) {
        g_error("refused: %s", err);
    }
}

/* Refused, and the message holds every string given (NULL-terminated). */
static void assert_refused(const char *image, const QemuTransportVm *vm, ...)
{
    char *err = restore(image, vm);
    const char *what;
    va_list ap;

    if (!err) {
        g_error("%s loaded; it must be refused", image);
    }
    va_start(ap, vm);
    while ((what = va_arg(ap, const char *))) {
        if (!strstr(err, what)) {
            g_error("message \"%s\" lacks \"%s\"", err, what);
        }
    }
    va_end(ap);
    g_free(err);
}

static void set_mtime(const char *path, const struct stat *st)
{
    struct timespec ts[2] = { st->st_atim, st->st_mtim };

    g_assert_cmpint(utimensat(AT_FDCWD, path, ts, 0), ==, 0);
}

static void stat_path(const char *path, struct stat *st)
{
    g_assert_cmpint(stat(path, st), ==, 0);
}

/* ---- what loads --------------------------------------------------------- */

static void test_same_vm(void)
{
    char *image = tu_path("same.cpr");
    Ram src, dst;
    Vm v;

    ram_new(&src, "same.ram", 1);
    save(image, vm1(&v, &src));
    ram_reopen(&dst, &src);
    ram_close(&src);                    /* the saving QEMU exits */
    tu_clear_warnings();
    assert_loads(image, vm1(&v, &dst));
    /* Same QEMU, same kernel, nothing overridden: nothing to say. */
    g_assert_cmpuint(tu_nr_warnings(), ==, 0);
    /* A retry, and a second save from the restored VM, work too. */
    assert_loads(image, vm1(&v, &dst));
    save(image, vm1(&v, &dst));
    assert_loads(image, vm1(&v, &dst));
    ram_close(&dst);
    g_free(image);
}

/* A hard link is the same file: same inode, another path. */
static void test_same_file_other_path(void)
{
    char *image = tu_path("link.cpr"), *link_path = tu_path("link2.ram");
    Ram src, dst;
    Vm v;

    ram_new(&src, "link.ram", 2);
    save(image, vm1(&v, &src));
    unlink(link_path);
    g_assert_cmpint(link(src.path, link_path), ==, 0);
    ram_map(&dst, link_path, 0, 0, RAM_SIZE);
    assert_loads(image, vm1(&v, &dst));
    ram_close(&dst);
    ram_close(&src);
    g_free(link_path);
    g_free(image);
}

/* QEMU's prealloc writes every page, which sets the mtime: @dst is the
 * saved RAM after that; returns the image. */
static char *prealloc_written(Ram *dst)
{
    char *image = tu_path("prealloc.cpr");
    uint8_t *page = g_malloc(PAGE);
    Ram src;
    Vm v;

    ram_new(&src, "prealloc.ram", 3);
    save(image, vm1(&v, &src));
    ram_reopen(dst, &src);
    ram_close(&src);
    /* What prealloc does: write every page with what it holds. */
    usleep(20000);
    for (uint64_t off = 0; off < RAM_SIZE; off += PAGE) {
        memcpy(page, dst->host + off, PAGE);
        g_assert_cmpint(pwrite(dst->fd, page, PAGE, (off_t)off), ==, PAGE);
    }
    g_free(page);
    return image;
}

/* With the PREALLOC flag, the mtime prealloc set is excused. */
static void test_prealloc_mtime(void)
{
    Ram dst;
    char *image = prealloc_written(&dst);
    Vm v;

    dst.block.flags |= QEMU_TRANSPORT_RAM_PREALLOC;
    assert_loads(image, vm1(&v, &dst));
    ram_close(&dst);
    g_free(image);
}

/* Without it, the same file is "modified since the save". */
static void test_prealloc_mtime_unflagged(void)
{
    Ram dst;
    char *image = prealloc_written(&dst);
    Vm v;

    assert_refused(image, vm1(&v, &dst), dst.path, "modified since the save",
                   NULL);
    ram_close(&dst);
    g_free(image);
}

/* A VM with anonymous RAM (seed 4), saved; returns the image. */
static char *anonymous_saved(void)
{
    char *image = tu_path("anon.cpr");
    Ram src;
    Vm v;

    ram_anon(&src, 4);
    tu_clear_warnings();
    save(image, vm1(&v, &src));
    g_assert_true(tu_warned("RAM block pc.ram is on volatile memory "
                            "(anonymous memory): a host reboot loses it"));
    ram_close(&src);
    return image;
}

/* Anonymous blocks are compared by their sampled pages only. */
static void test_anonymous(void)
{
    char *image = anonymous_saved();
    Ram same;
    Vm v;

    ram_anon(&same, 4);
    assert_loads(image, vm1(&v, &same));
    ram_close(&same);
    g_free(image);
}

static void test_anonymous_zeroed(void)
{
    char *image = anonymous_saved();
    Ram fresh;
    Vm v;

    ram_anon(&fresh, 0);
    assert_refused(image, vm1(&v, &fresh), "RAM block pc.ram (anonymous "
                   "memory): 64 of 64 sampled pages differ from the saved VM "
                   "and are all zero: the RAM looks newly created", NULL);
    ram_close(&fresh);
    g_free(image);
}

/* A file where the save had anonymous memory. */
static void test_anonymous_now_file(void)
{
    char *image = anonymous_saved();
    Ram file;
    Vm v;

    ram_new(&file, "anon.ram", 4);
    assert_refused(image, vm1(&v, &file), "RAM block pc.ram is a file, "
                   "the saved VM's was anonymous memory", NULL);
    ram_close(&file);
    g_free(image);
}

/* Several blocks, and blocks smaller than 64 pages (sampled whole). */
static void test_several_blocks(void)
{
    char *image = tu_path("multi.cpr"), *p2 = tu_path("multi2.ram");
    Ram a, b;
    Vm v;

    ram_new(&a, "multi.ram", 5);
    unlink(p2);
    ram_map(&b, p2, 16 * PAGE, 0, 16 * PAGE);
    fill(b.host, 16 * PAGE, 6);
    b.block.name = "/objects/ram1";
    save(image, vm_of(&v, TU_MACHINE, TU_CPU, &a, &b, NULL));
    assert_loads(image, vm_of(&v, TU_MACHINE, TU_CPU, &a, &b, NULL));
    /* Order does not matter, names do. */
    assert_loads(image, vm_of(&v, TU_MACHINE, TU_CPU, &b, &a, NULL));
    ram_close(&a);
    ram_close(&b);
    g_free(p2);
    g_free(image);
}

/* One page of the small block changed: sampled whole, it is seen. */
static void test_several_blocks_one_page(void)
{
    char *image = tu_path("multi.cpr"), *p2 = tu_path("multi2.ram");
    Ram a, b, b2;
    Vm v;

    ram_new(&a, "multi.ram", 5);
    unlink(p2);
    ram_map(&b, p2, 16 * PAGE, 0, 16 * PAGE);
    fill(b.host, 16 * PAGE, 6);
    b.block.name = "/objects/ram1";
    save(image, vm_of(&v, TU_MACHINE, TU_CPU, &a, &b, NULL));
    ram_map(&b2, p2, 0, 0, 16 * PAGE);
    b2.block.name = "/objects/ram1";
    b2.host[5 * PAGE + 17] ^= 1;
    assert_refused(image, vm_of(&v, TU_MACHINE, TU_CPU, &a, &b2, NULL), p2,
                   "1 of 16 sampled pages differ from the saved VM (stale or "
                   "foreign guest RAM)", NULL);
    ram_close(&b2);
    ram_close(&a);
    ram_close(&b);
    g_free(p2);
    g_free(image);
}

/*
 * A QEMU of a later ABI passes larger elements (fields appended): the
 * transport steps through them by the size QEMU states.  Saved through
 * such a VM, the image loads with this ABI's elements; a page changed
 * in the second block is seen, so both were read where they are.
 */
static void test_later_abi_elements(void)
{
    typedef struct LaterBlock {
        QemuTransportRamBlock b;
        uint64_t later[3];
    } LaterBlock;
    char *image = tu_path("later.cpr"), *p2 = tu_path("later2.ram");
    LaterBlock later[2];
    QemuTransportVm lvm;
    Ram a, b;
    Vm v;

    ram_new(&a, "later.ram", 7);
    unlink(p2);
    ram_map(&b, p2, 16 * PAGE, 0, 16 * PAGE);
    fill(b.host, 16 * PAGE, 8);
    b.block.name = "/objects/ram1";
    memset(later, 0xa5, sizeof(later));
    later[0].b = a.block;
    later[1].b = b.block;
    lvm = *vm_of(&v, TU_MACHINE, TU_CPU, &a, &b, NULL);
    lvm.ram = &later[0].b;
    lvm.ram_block_size = sizeof(LaterBlock);
    save(image, &lvm);
    assert_loads(image, vm_of(&v, TU_MACHINE, TU_CPU, &a, &b, NULL));
    assert_loads(image, &lvm);
    b.host[3 * PAGE + 5] ^= 1;
    assert_refused(image, &lvm, p2, "1 of 16 sampled pages differ", NULL);
    ram_close(&a);
    ram_close(&b);
    g_free(p2);
    g_free(image);
}

/* Elements smaller than this ABI's: refused at out_open and in_open,
 * before any element is read. */
static void test_small_elements(void)
{
    char *image = tu_path("small.cpr");
    const QemuTransportOps *ops = tu_ops();
    QemuTransportDisk disk = { "d0", "/nonexistent.raw", "file", 0,
                               QEMU_TRANSPORT_DISK_PROTOCOL };
    QemuTransportVm small;
    char *err = NULL;
    Ram a;
    Vm v;

    ram_new(&a, "small.ram", 9);
    save(image, vm1(&v, &a));
    small = *vm1(&v, &a);
    small.ram_block_size = sizeof(QemuTransportRamBlock) - 8;
    g_assert_null(ops->out_open(image, &small, &err));
    g_assert_nonnull(strstr(err, "RAM block elements of"));
    g_assert_nonnull(strstr(err, "fewer than this transport's"));
    free(err);
    err = NULL;
    assert_refused(image, &small, image, "RAM block elements of", NULL);
    small = *vm1(&v, &a);
    small.disks = &disk;
    small.nr_disks = 1;
    small.disk_size = sizeof(QemuTransportDisk) - 4;
    g_assert_null(ops->out_open(image, &small, &err));
    g_assert_nonnull(strstr(err, "block node elements of"));
    free(err);
    assert_refused(image, &small, image, "block node elements of", NULL);
    /* the image saved before is untouched */
    assert_loads(image, vm1(&v, &a));
    ram_close(&a);
    g_free(image);
}

/* ---- what is refused ---------------------------------------------------- */

static void test_missing_block(void)
{
    char *image = tu_path("missing.cpr");
    Ram src;
    Vm v;

    ram_new(&src, "missing.ram", 7);
    save(image, vm1(&v, &src));
    assert_refused(image, vm_of(&v, TU_MACHINE, TU_CPU, NULL), src.path,
                   ": RAM block pc.ram of the saved VM is missing on the "
                   "destination; refusing to resume from ", image,
                   "(CPR_PMEM_ALLOW=ram overrides)", NULL);
    /* A corrected retry loads. */
    assert_loads(image, vm1(&v, &src));
    ram_close(&src);
    g_free(image);
}

static void test_extra_block(void)
{
    char *image = tu_path("extra.cpr");
    Ram src, extra;
    Vm v;

    ram_new(&src, "missing.ram", 7);
    save(image, vm1(&v, &src));
    ram_new(&extra, "extra.ram", 8);
    extra.block.name = "ram1";
    assert_refused(image, vm_of(&v, TU_MACHINE, TU_CPU, &src, &extra, NULL),
                   extra.path, ": RAM block ram1 is not in the saved VM",
                   NULL);
    /* A corrected retry loads. */
    assert_loads(image, vm1(&v, &src));
    ram_close(&extra);
    ram_close(&src);
    g_free(image);
}

static void test_resized(void)
{
    char *image = tu_path("resized.cpr");
    Ram src, dst;
    Vm v;

    ram_new(&src, "resized.ram", 9);
    save(image, vm1(&v, &src));
    ram_map(&dst, src.path, 2 * RAM_SIZE, 0, 2 * RAM_SIZE);
    assert_refused(image, vm1(&v, &dst), src.path, ": RAM block pc.ram is "
                   "16 MiB, the saved VM's was 8 MiB (resized?)", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

static void test_other_file(void)
{
    char *image = tu_path("other.cpr"), *copy = tu_path("other-copy.ram");
    Ram src, dst;
    Vm v;

    ram_new(&src, "other.ram", 10);
    save(image, vm1(&v, &src));
    /* A byte-exact copy is another file: a copy taken before the save
     * would pass any sample of an idle guest. */
    unlink(copy);
    ram_map(&dst, copy, RAM_SIZE, 0, RAM_SIZE);
    memcpy(dst.host, src.host, RAM_SIZE);
    assert_refused(image, vm1(&v, &dst), copy, ": not the file the VM was "
                   "saved with (that was ", src.path, NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(copy);
    g_free(image);
}

/* Another VM's RAM: another file, other contents. */
static void test_other_vm_file(void)
{
    char *image = tu_path("other.cpr");
    Ram src, dst;
    Vm v;

    ram_new(&src, "other.ram", 10);
    save(image, vm1(&v, &src));
    ram_new(&dst, "other-vm.ram", 11);
    assert_refused(image, vm1(&v, &dst), dst.path, "not the file the VM was "
                   "saved with", "64 of 64 sampled pages differ from the "
                   "saved VM (stale or foreign guest RAM)", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

static void test_fd_offset(void)
{
    char *image = tu_path("offset.cpr"), *path = tu_path("offset.ram");
    Ram src, dst;
    Vm v;

    unlink(path);
    ram_map(&src, path, 2 * RAM_SIZE, 0, RAM_SIZE);
    g_free(path);
    fill(src.host, RAM_SIZE, 12);
    save(image, vm1(&v, &src));
    ram_map(&dst, src.path, 0, 4 * MiB, RAM_SIZE);
    assert_refused(image, vm1(&v, &dst), src.path, ": RAM block pc.ram "
                   "starts at offset 4194304 of the file, the saved VM's at 0",
                   NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

/* A stale copy written over the same inode: the sample may well match
 * (an idle guest changes few pages), the mtime does not. */
static void test_mtime(void)
{
    char *image = tu_path("mtime.cpr");
    uint8_t *page = g_malloc(PAGE);
    Ram src, dst;
    Vm v;

    ram_new(&src, "mtime.ram", 13);
    save(image, vm1(&v, &src));
    /* Write back what is there: contents unchanged, mtime not. */
    g_assert_cmpint(pread(src.fd, page, PAGE, 0), ==, PAGE);
    usleep(20000);
    g_assert_cmpint(pwrite(src.fd, page, PAGE, 0), ==, PAGE);
    ram_reopen(&dst, &src);
    assert_refused(image, vm1(&v, &dst), src.path, ": modified since the "
                   "save (at ", "; saved at ", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(page);
    g_free(image);
}

/* Contents changed in place, the mtime put back: the sample catches it.
 * @change: one byte, another guest's RAM, or zeroed (the blocks
 * dropped). */
enum { ONE_BYTE, OTHER_GUEST, ZEROED };

static void check_content_changed(int change, const char *const *what)
{
    char *image = tu_path("content.cpr");
    Ram src, dst;
    struct stat st;
    Vm v;

    ram_new(&src, "content.ram", 14);
    save(image, vm1(&v, &src));
    stat_path(src.path, &st);
    ram_reopen(&dst, &src);
    if (change == ONE_BYTE) {
        dst.host[0] ^= 0x80;            /* the first page is always sampled */
        msync(dst.host, PAGE, MS_SYNC);
    } else if (change == OTHER_GUEST) {
        fill(dst.host, RAM_SIZE, 15);
        msync(dst.host, RAM_SIZE, MS_SYNC);
    } else {
        g_assert_cmpint(fallocate(src.fd, FALLOC_FL_PUNCH_HOLE |
                                  FALLOC_FL_KEEP_SIZE, 0, RAM_SIZE), ==, 0);
    }
    set_mtime(src.path, &st);
    assert_refused(image, vm1(&v, &dst), src.path, what[0], what[1], NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

static void test_content_one_byte(void)
{
    check_content_changed(ONE_BYTE, (const char *const[]){
        ": 1 of 64 sampled pages differ from the saved VM (stale or foreign "
        "guest RAM)", "; refusing to resume from " });
}

static void test_content_other_guest(void)
{
    check_content_changed(OTHER_GUEST, (const char *const[]){
        ": 64 of 64 sampled pages differ from the saved VM (stale or "
        "foreign guest RAM)", "; refusing to resume from " });
}

static void test_content_zeroed(void)
{
    check_content_changed(ZEROED, (const char *const[]){
        "64 of 64 sampled pages differ from the saved VM and are all zero: "
        "the RAM looks newly created", "; refusing to resume from " });
}

/* What tmpfs does across a real reboot: the RAM file is gone, QEMU
 * creates a new, zeroed one. */
static void test_zeroed_new_file(void)
{
    char *image = tu_path("zeroed.cpr"), *fresh = tu_path("zeroed.new");
    Ram src, dst;
    Vm v;

    ram_new(&src, "zeroed.ram", 16);
    save(image, vm1(&v, &src));
    /* Made while the old one exists, so it cannot reuse its inode. */
    unlink(fresh);
    ram_map(&dst, fresh, RAM_SIZE, 0, RAM_SIZE);
    g_assert_cmpint(rename(dst.path, src.path), ==, 0);
    g_free(dst.path);
    dst.path = g_strdup(src.path);
    ram_close(&src);
    assert_refused(image, vm1(&v, &dst), dst.path, "not the file the VM was "
                   "saved with", "64 of 64 sampled pages differ from the "
                   "saved VM and are all zero: the RAM looks newly created "
                   "(a tmpfs does not survive a reboot)", NULL);
    ram_close(&dst);
    g_free(fresh);
    g_free(image);
}

/*
 * Device DAX (issue 17): a character device, of size 0 to fstat, whose
 * node devtmpfs makes anew each boot.  It saves, and loads again while
 * its memory holds the VM; the device is its device number; its
 * contents its sampled pages.
 */
static void test_device_loads(void)
{
    char *image = tu_path("device.cpr");
    struct stat st;
    Ram ram;
    Vm v;

    ram_device(&ram, "/dev/zero", 40);
    save(image, vm1(&v, &ram));
    assert_loads(image, vm1(&v, &ram));
    /* The same device through another node (devtmpfs after a boot). */
    g_assert_cmpint(fstat(ram.fd, &st), ==, 0);
    g_assert_true(S_ISCHR(st.st_mode));
    ram_close(&ram);
    g_free(image);
}

/* A zeroed device (the region wiped, or DRAM-backed pmem after a cold
 * reboot): the same device number, every sampled page zero. */
static void test_device_zeroed(void)
{
    char *image = tu_path("device-zeroed.cpr");
    Ram src, dst;
    Vm v;

    ram_device(&src, "/dev/zero", 41);
    save(image, vm1(&v, &src));
    ram_device(&dst, "/dev/zero", 0);
    assert_refused(image, vm1(&v, &dst), "/dev/zero", "64 of 64 sampled "
                   "pages differ from the saved VM and are all zero: the "
                   "device looks wiped", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

/* Another device at the RAM's place, even with the same contents. */
static void test_device_swapped(void)
{
    char *image = tu_path("device-swapped.cpr");
    Ram src, dst;
    Vm v;

    ram_device(&src, "/dev/zero", 42);
    save(image, vm1(&v, &src));
    ram_device(&dst, "/dev/full", 42);
    assert_refused(image, vm1(&v, &dst), "/dev/full: not the file the VM "
                   "was saved with (that was /dev/zero, inode 0 on device "
                   "1:5", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

/*
 * The same path, another device (device DAX renumbered after a boot):
 * refused by the device number alone, the path and contents being the
 * same.  Needs mknod (root) on a filesystem without nodev.
 */
static void test_device_same_path_other_device(void)
{
    char *image = tu_path("device-node.cpr"), *node = tu_path("dax-node");
    Ram src, dst;
    Vm v;

    unlink(node);
    if (mknod(node, S_IFCHR | 0600, makedev(1, 5)) < 0) {
        g_test_skip("mknod failed (not root?)");
        goto out;
    }
    ram_device(&src, node, 43);
    save(image, vm1(&v, &src));
    g_assert_cmpint(unlink(node), ==, 0);
    g_assert_cmpint(mknod(node, S_IFCHR | 0600, makedev(1, 7)), ==, 0);
    /* /dev/full: no mmap, the same contents.  A kexec renumbers device
     * DAX at the same path: the device number alone is no refusal, the
     * pages decide (device/zeroed and device/swapped refuse by them). */
    ram_device(&dst, node, 43);
    assert_loads(image, vm1(&v, &dst));
    ram_close(&dst);
    ram_close(&src);
    unlink(node);
out:
    g_free(node);
    g_free(image);
}

static int truncated_child(void *opaque)
{
    const char *image = opaque;
    const QemuTransportOps *ops = tu_ops();
    QemuTransportOut *t;
    char *err = NULL;
    Ram src;
    Vm v;

    ram_new(&src, "truncated.ram", 17);
    t = ops->out_open(image, vm1(&v, &src), &err);
    g_assert_nonnull(t);
    g_assert_cmpint(ops->out_writev(t, &(struct iovec){ stream, 100 }, 1,
                                    &err), ==, 100);
    g_assert_cmpint(ftruncate(src.fd, RAM_SIZE / 2), ==, 0);
    g_assert_cmpint(ops->out_commit(t, vm1(&v, &src), &err), ==, -1);
    g_assert_nonnull(strstr(err, src.path));
    g_assert_nonnull(strstr(err, "is shorter"));
    g_test_message("out_commit refused: %s", err);
    free(err);
    ops->out_abort(t);
    ops->out_close(t);
    ram_close(&src);
    return 0;
}

/* A truncated RAM file is an error at commit and at restore, never a
 * SIGBUS (the fingerprint reads under the fault guard). */
static void test_truncated(void)
{
    char *image = tu_path("truncated.cpr");
    uint64_t index[4] = { 0, 1, RAM_SIZE / PAGE - 2, RAM_SIZE / PAGE - 1 };
    uint64_t xxh3[4];
    Ram src, dst;
    Vm v;

    hu_assert_exit_ok(hu_run_child(truncated_child, image),
                      "out_commit with a truncated RAM file");
    ram_new(&src, "truncated.ram", 17);
    save(image, vm1(&v, &src));
    g_assert_cmpint(ftruncate(src.fd, RAM_SIZE / 2), ==, 0);
    /* The guard itself: the pages past the end fault. */
    g_assert_cmpint(cpr_fingerprint_hash(src.host, RAM_SIZE, 1, index, 2,
                                         xxh3, NULL), ==, 0);
    g_assert_cmpint(cpr_fingerprint_hash(src.host, RAM_SIZE, 1, index, 4,
                                         xxh3, NULL), ==, -1);
    /* Read from the file (what in_open does), the same without faults. */
    g_assert_cmpint(cpr_fingerprint_hash_fd(src.fd, 0, RAM_SIZE, 1, index, 2,
                                            xxh3, NULL), ==, 0);
    g_assert_cmpint(cpr_fingerprint_hash_fd(src.fd, 0, RAM_SIZE, 1, index, 4,
                                            xxh3, NULL), ==, -1);
    ram_map(&dst, src.path, 0, 0, RAM_SIZE);
    assert_refused(image, vm1(&v, &dst), src.path, "is shorter than RAM "
                   "block pc.ram", "truncated?", NULL);
    ram_close(&dst);
    ram_close(&src);
    g_free(image);
}

/* ---- the command line --------------------------------------------------- */

/* tu_cmdline with @drop removed (if not NULL) and @add appended. */
static void cmdline_with(const char *drop, const char *const *add)
{
    const char *argv[64];
    int n = 0;

    for (int i = 0; tu_cmdline[i]; i++) {
        if (drop && !strcmp(tu_cmdline[i], drop)) {
            n--;    /* the option before its value goes too */
            continue;
        }
        argv[n++] = tu_cmdline[i];
    }
    for (int i = 0; add && add[i]; i++) {
        argv[n++] = add[i];
    }
    argv[n] = NULL;
    tu_set_cmdline(argv);
}

/* A VM saved with tu_cmdline (seed 18); returns the image. */
static char *cmdline_saved(Ram *src)
{
    char *image = tu_path("cmdline.cpr");
    Vm v;

    ram_new(src, "cmdline.ram", 18);
    save(image, vm1(&v, src));
    return image;
}

/* Refused for @want with @vm (NULL: the saved one's); then the operator
 * fixes the command line, and the retry loads. */
static void check_drift(const char *drop, const char *const *add,
                        const char *machine, const char *cpu,
                        const char *want)
{
    Ram src;
    char *image = cmdline_saved(&src);
    Vm v;

    cmdline_with(drop, add);
    assert_refused(image, vm_of(&v, machine ? machine : TU_MACHINE,
                                cpu ? cpu : TU_CPU, &src, NULL),
                   image, ": the command line differs from the saved VM's; "
                   "refusing to resume (CPR_PMEM_ALLOW=cmdline overrides):\n",
                   want, NULL);
    tu_set_cmdline(NULL);
    assert_loads(image, vm1(&v, &src));
    ram_close(&src);
    g_free(image);
}

static void test_drift_added_device(void)
{
    check_drift(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                             NULL },
                NULL, NULL, "\n+ -device virtio-rng-pci");
}

static void test_drift_removed_device(void)
{
    check_drift("virtio-net-pci,id=net0", NULL, NULL, NULL,
                "\n- -device virtio-net-pci,id=net0");
}

static void test_drift_memory(void)
{
    check_drift("512M", (const char *const[]){ "-m", "1G", NULL }, NULL,
                NULL, "\n~ -m 512M -> 1G");
}

static void test_drift_smp(void)
{
    check_drift("2", (const char *const[]){ "-smp", "4", NULL }, NULL, NULL,
                "\n~ -smp 2 -> 4");
}

static void test_drift_machine(void)
{
    check_drift(NULL, NULL, "pc-q35-10.2", NULL,
                "\n~ machine pc-q35-10.0 -> pc-q35-10.2");
}

static void test_drift_cpu(void)
{
    check_drift(NULL, NULL, NULL, "host", "\n~ cpu qemu64 -> host");
}

/* Both kinds at once: both reasons. */
static void test_drift_and_missing_ram(void)
{
    Ram src;
    char *image = cmdline_saved(&src);
    Vm none;

    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    assert_refused(image, vm_of(&none, TU_MACHINE, TU_CPU, NULL),
                   "is missing on the destination", "\n+ -device "
                   "virtio-rng-pci", NULL);
    tu_set_cmdline(NULL);
    ram_close(&src);
    g_free(image);
}

/* What may differ: monitors, logs, the process, the display, migration
 * settings, the RAM file's path. */
static void test_cmdline_ignored(void)
{
    static const char *const dst[] = {
        "/opt/qemu-10.2/bin/qemu-system-x86_64", "-machine", "pc-q35-10.0",
        "-m", "512M", "-smp", "2", "-nodefaults", "-S",
        "-device", "virtio-net-pci,id=net0", "--incoming=defer",
        "-qmp", "unix:/run/qmp.sock,server=on,wait=off",
        "-chardev", "socket,id=mon1,path=/run/mon", "-mon", "mon1",
        "-pidfile", "/run/vm.pid", "-daemonize", "-D", "/tmp/log", "-d",
        "guest_errors", "-trace", "migration_*", "-msg", "timestamp=on",
        "-name", "vm1,debug-threads=on", "-run-with", "user=nobody",
        "-sandbox", "on", "-display", "none", "-vnc", ":1", "-L", "/usr/share",
        "-global", "migration.x-preload-transports=pmem", "-mem-prealloc",
        "-global", "driver=migration,property=multifd-channels,value=4",
        "-monitor", "none", "-qtest", "unix:/q", "-qtest-log", "/dev/null",
        NULL,
    };
    char *image = tu_path("ignored.cpr");
    Ram src;
    Vm v;

    ram_new(&src, "ignored.ram", 19);
    save(image, vm1(&v, &src));
    tu_set_cmdline(dst);
    tu_clear_warnings();
    assert_loads(image, vm1(&v, &src));
    g_assert_cmpuint(tu_nr_warnings(), ==, 0);
    tu_set_cmdline(NULL);
    ram_close(&src);
    g_free(image);
}

/* Production reads /proc/self/cmdline: the saved one is this process's. */
static void test_cmdline_proc(void)
{
    char *image = tu_path("proc.cpr"), *own = NULL, *err = NULL;
    gsize own_len = 0;
    CprReader *r;
    Ram src;
    Vm v;

    cpr_cmdline_set_for_tests(NULL, 0);
    ram_new(&src, "proc.ram", 20);
    save(image, vm1(&v, &src));
    assert_loads(image, vm1(&v, &src));
    g_assert_true(g_file_get_contents("/proc/self/cmdline", &own, &own_len,
                                      NULL));
    r = cpr_reader_open(image, &err);
    g_assert_nonnull(r);
    g_assert_cmpuint(cpr_reader_vmdesc(r)->argv_len, ==, own_len);
    g_assert_cmpmem(cpr_reader_vmdesc(r)->argv, own_len, own, own_len);
    cpr_reader_close(r);
    /* Another process's command line is drift. */
    tu_set_cmdline(NULL);
    assert_refused(image, vm1(&v, &src), "the command line differs", NULL);
    g_free(own);
    ram_close(&src);
    g_free(image);
}

/* ---- the override, the old format, warnings ----------------------------- */

/* The saved VM (seed 21) and its RAM file reopened in @dst with another
 * guest's contents (seed 22), the mtime put back: only the sample tells.
 * Returns the image. */
static char *override_saved(Ram *src, Ram *dst, struct stat *st)
{
    char *image = tu_path("override.cpr");
    Vm v;

    ram_new(src, "override.ram", 21);
    save(image, vm1(&v, src));
    stat_path(src->path, st);
    ram_reopen(dst, src);
    fill(dst->host, RAM_SIZE, 22);
    msync(dst->host, RAM_SIZE, MS_SYNC);
    set_mtime(src->path, st);
    return image;
}

static void override_done(Ram *src, Ram *dst, char *image)
{
    g_unsetenv(CPR_ALLOW_ENV);
    tu_set_cmdline(NULL);
    ram_close(dst);
    ram_close(src);
    g_free(image);
}

/* RAM: it loads, and each use is reported. */
static void test_override_ram(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    Vm v;

    assert_refused(image, vm1(&v, &dst), "64 of 64 sampled pages differ",
                   NULL);
    g_setenv(CPR_ALLOW_ENV, "ram", TRUE);
    tu_clear_warnings();
    assert_loads(image, vm1(&v, &dst));
    g_assert_true(tu_warned("CPR_PMEM_ALLOW=ram: resuming "));
    g_assert_true(tu_warned("64 of 64 sampled pages differ"));
    override_done(&src, &dst, image);
}

/* ... but not the command line. */
static void test_override_ram_not_cmdline(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    Vm v;

    g_setenv(CPR_ALLOW_ENV, "ram", TRUE);
    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    assert_refused(image, vm1(&v, &dst), "+ -device virtio-rng-pci", NULL);
    override_done(&src, &dst, image);
}

/* The command line overridden does not excuse the RAM. */
static void test_override_cmdline_not_ram(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    Vm v;

    g_setenv(CPR_ALLOW_ENV, "cmdline", TRUE);
    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    assert_refused(image, vm1(&v, &dst), "64 of 64 sampled pages differ",
                   NULL);
    override_done(&src, &dst, image);
}

/* The command line: it loads, each difference warned. */
static void test_override_cmdline(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    Vm v;

    fill(dst.host, RAM_SIZE, 21);       /* the right RAM again */
    msync(dst.host, RAM_SIZE, MS_SYNC);
    set_mtime(src.path, &st);
    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    assert_refused(image, vm_of(&v, "pc-q35-10.2", TU_CPU, &dst, NULL),
                   "+ -device virtio-rng-pci", NULL);
    g_setenv(CPR_ALLOW_ENV, "cmdline", TRUE);
    tu_clear_warnings();
    assert_loads(image, vm_of(&v, "pc-q35-10.2", TU_CPU, &dst, NULL));
    g_assert_true(tu_warned("CPR_PMEM_ALLOW=cmdline: resuming "));
    g_assert_true(tu_warned("the command line differs: + -device "
                            "virtio-rng-pci"));
    g_assert_true(tu_warned("the command line differs: ~ machine "
                            "pc-q35-10.0 -> pc-q35-10.2"));
    override_done(&src, &dst, image);
}

/* Both, with spaces, and an unknown word (warned, ignored); unset, the
 * RAM is refused again. */
static void test_override_both(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    Vm v;

    g_setenv(CPR_ALLOW_ENV, " ram, cmdline,everything", TRUE);
    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    tu_clear_warnings();
    assert_loads(image, vm1(&v, &dst));
    g_assert_true(tu_warned("CPR_PMEM_ALLOW: ignoring unknown item "
                            "'everything' (known: cmdline, ram, disk)"));
    g_unsetenv(CPR_ALLOW_ENV);
    tu_set_cmdline(NULL);
    assert_refused(image, vm1(&v, &dst), "sampled pages differ", NULL);
    override_done(&src, &dst, image);
}

/* Rewrite the VM description of @image's newest record with @edit
 * (payload checksum and record re-signed, as a forger or a test would). */
static void edit_desc(const char *image, void (*edit)(CprVmdesc *d))
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(image, &err);
    CprRecord rec = *cpr_reader_record(r);
    uint8_t *payload, *desc, buf[CPR_REC_SIZE];
    const char *why;
    CprVmdesc *d;
    size_t len;
    int fd;

    cpr_reader_close(r);
    fd = open(image, O_RDWR);
    payload = g_malloc(rec.payload_len);
    g_assert_cmpint(pread(fd, payload, rec.payload_len,
                          (off_t)rec.payload_off), ==, rec.payload_len);
    g_assert_cmpint(cpr_vmdesc_decode(payload + rec.stream_len,
                                      rec.payload_len - rec.stream_len, &d,
                                      &why), ==, CPR_VMDESC_OK);
    edit(d);
    desc = cpr_vmdesc_encode(d, &len);
    payload = g_realloc(payload, rec.stream_len + len);
    memcpy(payload + rec.stream_len, desc, len);
    rec.payload_len = rec.stream_len + len;
    rec.payload_xxh3 = cpr_record_checksum(rec.version, payload,
                                           rec.payload_len);
    g_assert_cmpint(pwrite(fd, payload, rec.payload_len,
                           (off_t)rec.payload_off), ==, rec.payload_len);
    cpr_record_encode(&rec, buf);
    g_assert_cmpint(pwrite(fd, buf, CPR_REC_SIZE,
                           CPR_SLOT_OFFSET(cpr_slot_for(rec.generation))), ==,
                    CPR_REC_SIZE);
    close(fd);
    free(desc);
    cpr_vmdesc_free(d);
    g_free(payload);
}

static void older_versions(CprVmdesc *d)
{
    free(d->qemu_version);
    free(d->kernel_release);
    d->qemu_version = strdup("10.0.2");
    d->kernel_release = strdup("6.1.0-27-amd64");
}

static void test_versions_shown(void)
{
    char *image = tu_path("versions.cpr"), *want;
    struct utsname u;
    Ram src;
    Vm v;

    ram_new(&src, "versions.ram", 23);
    save(image, vm1(&v, &src));
    edit_desc(image, older_versions);
    g_assert_cmpint(uname(&u), ==, 0);
    want = g_strdup_printf("restoring a VM saved by QEMU 10.0.2 on Linux "
                           "6.1.0-27-amd64 into QEMU " TU_QEMU_VERSION " on "
                           "Linux %s", u.release);
    tu_clear_warnings();
    assert_loads(image, vm1(&v, &src));
    g_assert_true(tu_warned(want));
    g_free(want);
    ram_close(&src);
    g_free(image);
}

/* A host update installs this transport over the previous one: images
 * it saved (record format 1, nothing recorded) still load, with a
 * warning that nothing was verified. */
static void test_v1_image(void)
{
    char *image = tu_path("v1.cpr"), *err = NULL;
    uint8_t buf[CPR_REC_SIZE], *payload;
    CprRecord rec;
    CprReader *r;
    Ram src;
    Vm v;
    int fd;

    ram_new(&src, "v1.ram", 24);
    save(image, vm1(&v, &src));
    r = cpr_reader_open(image, &err);
    rec = *cpr_reader_record(r);
    cpr_reader_close(r);
    fd = open(image, O_RDWR);
    payload = g_malloc(rec.stream_len);
    g_assert_cmpint(pread(fd, payload, rec.stream_len,
                          (off_t)rec.payload_off), ==, rec.stream_len);
    rec.version = 1;
    rec.payload_len = rec.stream_len;
    rec.payload_xxh3 = XXH3_64bits(payload, rec.payload_len);
    memset(buf, 0, sizeof(buf));
    g_assert_cmpuint(cpr_record_encode(&rec, buf), ==, CPR_REC_V1_SIZE);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec.generation))), ==,
                    sizeof(buf));
    close(fd);
    tu_clear_warnings();
    /* Whatever the destination looks like. */
    cmdline_with(NULL, (const char *const[]){ "-device", "virtio-rng-pci",
                                              NULL });
    assert_loads(image, vm_of(&v, "pc-q35-10.2", "host", NULL));
    tu_set_cmdline(NULL);
    g_assert_true(tu_warned("was saved by an older pmem transport (record "
                            "format 1) that did not record the VM: its guest "
                            "RAM and command line are not verified"));
    /* The next save writes the current format again. */
    save(image, vm1(&v, &src));
    r = cpr_reader_open(image, &err);
    g_assert_cmpuint(cpr_reader_record(r)->version, ==, CPR_REC_VERSION);
    g_assert_nonnull(cpr_reader_vmdesc(r));
    cpr_reader_close(r);
    g_free(payload);
    ram_close(&src);
    g_free(image);
}

/* Warned at save time: what a reboot loses. */
static void test_volatile_warnings(void)
{
    char *image = tu_path("warn.cpr");
    gboolean shm = hu_on_tmpfs(tu_dir());
    Ram src;
    Vm v;

    ram_new(&src, "warn.ram", 25);
    tu_clear_warnings();
    save(image, vm1(&v, &src));
    g_assert_cmpint(tu_warned("the image is on volatile memory (tmpfs): a "
                              "host reboot loses it"), ==, shm);
    g_assert_cmpint(tu_warned("the guest RAM of block pc.ram is on volatile "
                              "memory (tmpfs): a host reboot loses it"), ==,
                    shm);
    if (!shm) {
        g_assert_cmpuint(tu_nr_warnings(), ==, 0);
    }
    ram_close(&src);
    g_free(image);
}

/*
 * in_open's binding check beside the verification (binding-early.h),
 * composed as plugin.c does, with a host of the test's own that notes
 * which thread each warning reaches it on.
 */
static GPtrArray *early_warnings;
static pthread_t main_thread;

static void early_warn(void *opaque, const char *msg)
{
    (void)opaque;
    /* QEMU hears a warning on in_open's thread, never the helper's. */
    g_assert_true(pthread_equal(pthread_self(), main_thread));
    g_ptr_array_add(early_warnings, g_strdup(msg));
}

static const CprHost early_host = { TU_QEMU_VERSION, early_warn, NULL };

typedef struct Early {
    const char *image;
    CprVm vm;
    const char *other;          /* start from this image's description */
    bool wait_helper;           /* the helper's verdict first */
    CprEarlyBinding *e;
    unsigned runs;              /* helper runs before */
} Early;

static void early_peek(const CprImage *f, const CprRecord *rec,
                       void *opaque)
{
    Early *x = opaque;
    CprReader *o = NULL;
    char *err = NULL;

    x->runs = cpr_binding_early_helper_runs();
    if (x->other) {
        o = cpr_reader_open(x->other, &err);
        g_assert_nonnull(o);
        f = cpr_reader_file(o);
        rec = cpr_reader_record(o);
    }
    x->e = cpr_binding_early_start(x->image, f, rec, &early_host, &x->vm);
    g_assert_nonnull(x->e);
    cpr_reader_close(o);
    /* Not a timing: a bound on a wait that takes microseconds. */
    for (int i = 0; x->wait_helper &&
         cpr_binding_early_helper_runs() == x->runs; i++) {
        g_assert_cmpint(i, <, 100000);
        g_usleep(100);
    }
    /* Its warnings wait for in_open's thread. */
    g_assert_cmpuint(early_warnings->len, ==, 0);
}

/* in_open's sequence on @image for @vm: NULL if it loads, else the
 * message (g_free() it).  *@on_helper: the helper ran the check. */
static char *early_restore(const char *image, const QemuTransportVm *vm,
                           const char *other, bool wait_helper,
                           bool *on_helper)
{
    Early x = { image, { vm, NULL, 0 }, other, wait_helper, NULL, 0 };
    char *err = NULL, *ret = NULL;
    CprReader *r;

    main_thread = pthread_self();
    if (!early_warnings) {
        early_warnings = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_set_size(early_warnings, 0);
    r = cpr_reader_open_peek(image, early_peek, &x, &err);
    if (cpr_binding_early_finish(x.e, r, image, &early_host, &x.vm,
                                 &err) < 0) {
        g_assert_nonnull(err);
        ret = g_strdup(err);
        g_test_message("refused: %s", ret);
    }
    *on_helper = cpr_binding_early_helper_runs() > x.runs;
    free(err);
    cpr_reader_close(r);
    return ret;
}

static bool early_warned(const char *what)
{
    for (guint i = 0; i < early_warnings->len; i++) {
        if (strstr(g_ptr_array_index(early_warnings, i), what)) {
            return true;
        }
    }
    return false;
}

/*
 * Stale RAM: refused with in_open's very message whether the check ran
 * on the helper before the verification ended or on the caller after
 * it (no helper); an override's warnings reach QEMU after the check,
 * on the caller's thread.
 */
static void test_early_helper_refuses(void)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    char *via_ops, *inline_msg, *helper_msg;
    bool on_helper;
    Vm v;

    /* A process whose helper never started: the caller checks. */
    inline_msg = early_restore(image, vm1(&v, &dst), NULL, false,
                               &on_helper);
    g_assert_false(on_helper);
    via_ops = restore(image, vm1(&v, &dst));    /* starts the helper */
    g_assert_nonnull(via_ops);
    helper_msg = early_restore(image, vm1(&v, &dst), NULL, true,
                               &on_helper);
    g_assert_true(on_helper);
    g_assert_cmpstr(inline_msg, ==, via_ops);
    g_assert_cmpstr(helper_msg, ==, via_ops);
    g_assert_nonnull(strstr(helper_msg, "64 of 64 sampled pages differ"));
    g_setenv(CPR_ALLOW_ENV, "ram", TRUE);
    g_assert_null(early_restore(image, vm1(&v, &dst), NULL, true,
                                &on_helper));
    g_assert_true(on_helper);
    g_assert_true(early_warned("CPR_PMEM_ALLOW=ram: resuming "));
    g_assert_true(early_warned("64 of 64 sampled pages differ"));
    g_free(via_ops);
    g_free(inline_msg);
    g_free(helper_msg);
    override_done(&src, &dst, image);
}

/* Flip a byte of @image's stream: its payload no longer verifies. */
static void corrupt_stream(const char *image)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(image, &err);
    uint64_t off;
    uint8_t b;
    int fd;

    g_assert_nonnull(r);
    off = cpr_reader_record(r)->payload_off + 4321;
    cpr_reader_close(r);
    fd = open(image, O_RDWR | O_CLOEXEC);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &b, 1, (off_t)off), ==, 1);
    b ^= 0x40;
    g_assert_cmpint(pwrite(fd, &b, 1, (off_t)off), ==, 1);
    close(fd);
}

/*
 * Stale RAM and a corrupt payload: the payload's refusal, whichever
 * finished first (the helper's RAM verdict before the verification
 * failed, or no helper: the check never runs), and no warning.
 */
static void check_early_corrupt(bool helper)
{
    Ram src, dst;
    struct stat st;
    char *image = override_saved(&src, &dst, &st);
    char *msg;
    bool on_helper;
    Vm v;

    corrupt_stream(image);
    if (helper) {
        cpr_room_init();
    }
    /* The RAM refused, then overridden (which warns). */
    for (int allow = 0; allow < 2; allow++) {
        if (allow) {
            g_setenv(CPR_ALLOW_ENV, "ram", TRUE);
        }
        msg = early_restore(image, vm1(&v, &dst), NULL, helper, &on_helper);
        g_assert_true(on_helper == helper);
        g_assert_nonnull(msg);
        g_assert_nonnull(strstr(msg, "payload checksum mismatch"));
        g_assert_null(strstr(msg, "sampled pages"));
        g_assert_cmpuint(early_warnings->len, ==, 0);
        g_free(msg);
    }
    override_done(&src, &dst, image);
}

static void test_early_corrupt_helper_first(void)
{
    check_early_corrupt(true);
}

static void test_early_corrupt_no_helper(void)
{
    check_early_corrupt(false);
}

/*
 * The description read ahead is not the one verified (another image's,
 * as if the file changed between the two reads): its verdict (refused:
 * another RAM file) is dropped, and the verified one's decides (loads).
 */
static void test_early_description_changed(void)
{
    char *image = tu_path("early.cpr"), *other = tu_path("early-other.cpr");
    Ram src, dst, foreign;
    bool on_helper;
    Vm v;

    ram_new(&src, "early.ram", 31);
    ram_new(&foreign, "early-foreign.ram", 32);
    save(image, vm1(&v, &src));
    save(other, vm1(&v, &foreign));
    ram_reopen(&dst, &src);
    cpr_room_init();
    g_assert_null(early_restore(image, vm1(&v, &dst), NULL, true,
                                &on_helper));
    g_assert_null(early_restore(image, vm1(&v, &dst), other, true,
                                &on_helper));
    g_assert_true(on_helper);           /* and refused what it read */
    ram_close(&dst);
    ram_close(&foreign);
    ram_close(&src);
    g_free(other);
    g_free(image);
}

/*
 * Every case in its own process, from main()'s state (tu_add_isolated):
 * none depends on another, and a failure names its case while the others
 * still run.
 */
int main(int argc, char **argv)
{
    static const struct {
        const char *path;
        GTestFunc fn;
    } cases[] = {
        { "loads/same-vm", test_same_vm },
        { "loads/same-file-other-path", test_same_file_other_path },
        { "loads/prealloc-mtime", test_prealloc_mtime },
        { "loads/anonymous", test_anonymous },
        { "loads/several-blocks", test_several_blocks },
        { "loads/ignored-options", test_cmdline_ignored },
        { "loads/v1-image", test_v1_image },
        { "loads/later-abi-elements", test_later_abi_elements },
        { "refused/prealloc-mtime-unflagged", test_prealloc_mtime_unflagged },
        { "refused/anonymous-zeroed", test_anonymous_zeroed },
        { "refused/anonymous-now-file", test_anonymous_now_file },
        { "refused/several-blocks-one-page", test_several_blocks_one_page },
        { "refused/missing-block", test_missing_block },
        { "refused/extra-block", test_extra_block },
        { "refused/resized", test_resized },
        { "refused/other-file", test_other_file },
        { "refused/other-vm-file", test_other_vm_file },
        { "refused/fd-offset", test_fd_offset },
        { "refused/mtime", test_mtime },
        { "refused/content-one-byte", test_content_one_byte },
        { "refused/content-other-guest", test_content_other_guest },
        { "refused/content-zeroed", test_content_zeroed },
        { "refused/zeroed-new-file", test_zeroed_new_file },
        { "refused/truncated", test_truncated },
        { "refused/small-elements", test_small_elements },
        { "device/loads", test_device_loads },
        { "device/zeroed", test_device_zeroed },
        { "device/swapped", test_device_swapped },
        { "device/same-path-renumbered",
          test_device_same_path_other_device },
        { "refused/cmdline-added-device", test_drift_added_device },
        { "refused/cmdline-removed-device", test_drift_removed_device },
        { "refused/cmdline-memory", test_drift_memory },
        { "refused/cmdline-smp", test_drift_smp },
        { "refused/cmdline-machine", test_drift_machine },
        { "refused/cmdline-cpu", test_drift_cpu },
        { "refused/cmdline-and-missing-ram", test_drift_and_missing_ram },
        { "refused/cmdline-of-another-process", test_cmdline_proc },
        { "override/ram", test_override_ram },
        { "override/ram-not-cmdline", test_override_ram_not_cmdline },
        { "override/cmdline-not-ram", test_override_cmdline_not_ram },
        { "override/cmdline", test_override_cmdline },
        { "override/both-and-unknown-word", test_override_both },
        { "warns/versions-shown", test_versions_shown },
        { "warns/volatile", test_volatile_warnings },
        { "early/helper-refuses-as-in-open", test_early_helper_refuses },
        { "early/corrupt-payload-helper-first",
          test_early_corrupt_helper_first },
        { "early/corrupt-payload-no-helper", test_early_corrupt_no_helper },
        { "early/description-changed", test_early_description_changed },
    };

    tu_test_init(&argc, &argv);
    stream = tu_pattern(STREAM_LEN, 99);
    tu_ops();
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strconcat("/binding/", cases[i].path, NULL);

        tu_add_isolated(path, cases[i].fn);
        g_free(path);
    }
    return g_test_run();
}
