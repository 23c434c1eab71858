/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over the save path (see fuzz-writer.h for the input):
 * a real image file made from the input, a save into it through the
 * transport ABI as QEMU 10.2 drives it (out_open with the VM, out_writev
 * and out_pwritev, out_commit with the VM or out_abort, out_close), then
 * a restore (in_open with the same VM, in_readv, in_preadv, in_close).
 * The whole backend is compiled in, so coverage follows the writer.
 *
 * Checked, besides no crash, assertion, leak or undefined behaviour:
 *  - every failure's message starts with "PATH: ", every warning is one
 *    line;
 *  - a commit that returned 0 loads through in_open, exactly the stream
 *    written (gaps as zeros), as the generation after the newest record
 *    the file had, and the other record slot is unchanged;
 *  - a save that did not commit leaves both record slots as they were,
 *    and an image that loaded before still loads the same stream;
 *  - either way, the payload of the live record (the newest, if all of
 *    it is in the file: FORMAT.md, "Save and commit protocol") keeps its
 *    bytes, and a new record's payload does not overlap it;
 *  - on the private tmpfs below, no save fails for want of space.
 *
 * The file lives in a per-process directory on /dev/shm.  As root, a
 * private 160 MiB tmpfs is mounted there (in a mount namespace of our
 * own, gone with the process), so that sparse files up to 64 GiB cannot
 * make the writer fill the machine's memory; without that, file sizes
 * are capped at 256 MiB (and running out of space is only counted).
 * How often out_open allocated more than 72 MiB for the stream of at
 * most 32 KiB that follows is counted and printed at exit;
 * CPR_FUZZ_ALLOC_ABORT=1 makes it a crash.  CPR_FUZZ_VERBOSE=1 prints
 * every refusal.
 */
#include "fuzz-image.h"
#include "fuzz-writer.h"
#include "cmdline.h"
#include "format.h"
#include "image-file.h"
#include "qemu/transport-plugin.h"
#include "reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

unsigned long fuzz_loaded;

#define BIG_ALLOC (72ull << 20)     /* 8 MiB initial + a 64 MiB step */
/* Stream, gap included. */
#define MAX_TOTAL (2 * FW_MAX_STREAM)
/* Live payloads up to this size are hashed before and after the save. */
#define MAX_LIVE_HASHED (1u << 20)

#define PAGE 4096u
#define FILE_RAM (16 * PAGE)
#define ANON_RAM (3 * PAGE + 100)

static const QemuTransportOps *ops;
static char dir[64], path[96];
static bool mounted, verbose;
static uint64_t max_file;
static struct {
    unsigned long inputs, committed, failed, big_alloc, no_space, warnings;
} st;

/* A QEMU command line, the same for every save and restore (so that a
 * crash reproduces whatever libFuzzer's arguments were). */
static const char cmdline[] =
    "qemu-system-x86_64\0-machine\0q35\0-m\0" "512M\0-global\0"
    "migration.x-ignore-shared=on\0";

/* The RAM QemuTransportVm describes: a memfd and anonymous memory. */
static QemuTransportRamBlock ram[2];
static uint8_t *file_ram, *anon_ram;

static void cleanup(void)
{
    unlink(path);
    if (mounted) {
        umount2(dir, MNT_DETACH);
    }
    rmdir(dir);
    fprintf(stderr, "fuzz-writer: %lu inputs, %lu committed, %lu failed "
            "(%lu for want of space), %lu warnings; out_open allocated "
            "more than %llu MiB %lu times\n", st.inputs, st.committed,
            st.failed, st.no_space, st.warnings, BIG_ALLOC >> 20,
            st.big_alloc);
}

/* Directories of runs that died without cleanup(): empty, or holding an
 * image where no tmpfs was mounted. */
static void remove_stale(void)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char proc[64], stale[300];
    int pid;

    while (d && (e = readdir(d))) {
        if (sscanf(e->d_name, "cpr-fuzz-writer-%d", &pid) != 1 ||
            pid == (int)getpid()) {
            continue;
        }
        snprintf(proc, sizeof(proc), "/proc/%d", pid);
        if (access(proc, F_OK) == 0) {
            continue;
        }
        snprintf(stale, sizeof(stale), "/dev/shm/%s/image", e->d_name);
        unlink(stale);
        snprintf(stale, sizeof(stale), "/dev/shm/%s", e->d_name);
        rmdir(stale);
    }
    if (d) {
        closedir(d);
    }
}

/* QemuTransportHostInfo.warn: one line, no newline. */
static void warn(const char *msg)
{
    CHECK(msg && *msg && !strchr(msg, '\n'));
    st.warnings++;
    if (verbose) {
        fprintf(stderr, "warning: %s\n", msg);
    }
}

static void make_ram(void)
{
    int fd = memfd_create("cpr-fuzz-ram", MFD_CLOEXEC);

    CHECK(fd >= 0 && ftruncate(fd, FILE_RAM) == 0);
    file_ram = mmap(NULL, FILE_RAM, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                    0);
    anon_ram = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(file_ram != MAP_FAILED && anon_ram != MAP_FAILED);
    for (unsigned i = 0; i < FILE_RAM; i++) {
        file_ram[i] = (uint8_t)(i / PAGE * 5 + i);
    }
    memset(anon_ram, 0x5a, ANON_RAM);
    ram[0] = (QemuTransportRamBlock){
        .name = "pc.ram", .host = file_ram, .size = FILE_RAM, .fd = fd,
        .flags = QEMU_TRANSPORT_RAM_SHARED,
    };
    ram[1] = (QemuTransportRamBlock){
        .name = "/objects/mem1", .host = anon_ram, .size = ANON_RAM,
        .fd = -1,
        .flags = QEMU_TRANSPORT_RAM_SHARED | QEMU_TRANSPORT_RAM_PREALLOC,
    };
}

static void setup(void)
{
    /* Valid for the life of the process, as QEMU's is. */
    static const QemuTransportHostInfo host = {
        QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
        "10.2.0-fuzz", warn,
    };
    char *err = NULL;

    remove_stale();
    snprintf(dir, sizeof(dir), "/dev/shm/cpr-fuzz-writer-%d", (int)getpid());
    snprintf(path, sizeof(path), "%s/image", dir);
    CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST);
    mounted = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
              mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
              mount("cpr-fuzz-writer", dir, "tmpfs", MS_NOSUID | MS_NODEV,
                    "size=160m,mode=0700") == 0;
    max_file = mounted ? FW_MAX_FILE : 256ull << 20;
    verbose = getenv("CPR_FUZZ_VERBOSE") != NULL;
    atexit(cleanup);
    make_ram();
    cpr_cmdline_set_for_tests(cmdline, sizeof(cmdline) - 1);
    ops = qemu_transport_plugin_init(&host, &err);
    CHECK(ops && !err);
}

/* The VM of @mode, as QEMU 10.2 passes it to out_open, out_commit and
 * in_open. */
static QemuTransportVm vm_of(unsigned mode)
{
    unsigned which = (mode & FW_VM_MASK) >> FW_VM_SHIFT;
    QemuTransportVm vm = { NULL, 0, "pc-q35-10.2", "qemu64",
                           sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };

    switch (which) {
    case FW_VM_ANON:
        vm.ram = &ram[1];
        vm.nr_ram = 1;
        break;
    case FW_VM_FILE:
        vm.ram = &ram[0];
        vm.nr_ram = 1;
        break;
    case FW_VM_BOTH:
        vm.ram = ram;
        vm.nr_ram = 2;
        break;
    }
    return vm;
}

/* A running guest: its RAM changes until the VM stops for the commit. */
static void guest_writes(uint64_t x)
{
    file_ram[x % FILE_RAM]++;
    anon_ram[(x >> 20) % ANON_RAM]++;
}

static uint64_t le(const uint8_t *data, size_t size, size_t at, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | (at + (size_t)i < size ? data[at + (size_t)i] : 0);
    }
    return v;
}

/* Payload offsets and lengths at the edges of the file, the format and
 * uint64_t, for the parameter bytes to pick (fuzz-writer.h); entry 0
 * is never picked (0 keeps the record's). */
static uint64_t pick(unsigned i, bool len, uint64_t file_size)
{
    const uint64_t area = CPR_PAYLOAD_AREA, fs = file_size;
    const uint64_t off[16] = {
        0, 0, area, 2 * area, area + 1, fs, fs - 1, 1ull << 40, 1ull << 62,
        1ull << 63, INT64_MAX, UINT64_MAX, UINT64_MAX - area + 1,
        FW_MAX_FILE, 1ull << 30, area + FW_LOW_OFF,
    };
    const uint64_t length[16] = {
        0, 0, 1, 300, area, fs, fs - area, 1ull << 40, 1ull << 60,
        1ull << 62, 1ull << 63, INT64_MAX, UINT64_MAX, UINT64_MAX - area + 1,
        FW_MAX_FILE - area, 2 * area,
    };

    _Static_assert(FW_PICK_LOW == 15, "off[] and fuzz-writer.h");
    return len ? length[i & 15] : off[i & 15];
}

/* Apply the record parameters to a valid record in @header. */
static void override_records(const uint8_t *data, size_t size,
                             uint8_t *header, uint64_t file_size,
                             const uint8_t *payload, size_t plen)
{
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        unsigned sel = (unsigned)le(data, size, FW_REC_AT + i, 1);
        uint8_t *p = header + CPR_SLOT_OFFSET(i);
        uint64_t desc;
        CprRecord rec;

        if (!sel || cpr_record_decode(p, CPR_REC_SIZE, &rec) !=
            CPR_DECODE_OK) {
            continue;
        }
        desc = cpr_record_vmdesc_len(&rec);
        if (sel & 15) {
            rec.payload_off = pick(sel & 15, false, file_size);
        }
        if (sel >> 4) {
            rec.payload_len = pick(sel >> 4, true, file_size);
        }
        /* The description stays the payload's end, as long as it was. */
        rec.stream_len = rec.payload_len - (desc < rec.payload_len ? desc :
                                            rec.payload_len);
        if (cpr_record_fits(&rec, CPR_PAYLOAD_AREA + plen)) {
            rec.payload_xxh3 = cpr_record_checksum(rec.version,
                payload + (rec.payload_off - CPR_PAYLOAD_AREA),
                rec.payload_len);
        }
        cpr_record_encode(&rec, p);
    }
}

/* Bytes an older save left in [@from, @to) of @fd. */
static void fill_stale(int fd, uint64_t from, uint64_t to)
{
    static uint8_t pattern[1u << 20];

    if (!pattern[0]) {
        for (size_t i = 0; i < sizeof(pattern); i++) {
            pattern[i] = (uint8_t)(0xa5 ^ (i * 131 >> 5));
        }
    }
    while (from < to) {
        size_t n = to - from < sizeof(pattern) ? to - from : sizeof(pattern);

        CHECK(pwrite(fd, pattern, n, (off_t)from) == (ssize_t)n);
        from += n;
    }
}

/* The image file the input describes; returns its allocated bytes. */
static uint64_t make_file(const uint8_t *data, size_t size, unsigned mode)
{
    static uint8_t header[CPR_HEADER_SIZE];
    const uint8_t *img = data + FW_IMAGE_AT;
    size_t img_size = size > FW_IMAGE_AT ? size - FW_IMAGE_AT : 0;
    size_t plen = img_size > FUZZ_PAYLOAD_AT ? img_size - FUZZ_PAYLOAD_AT : 0;
    uint64_t file_size = fuzz_expand(img, img_size, header);
    struct stat sb;
    int fd;

    /* A new inode each time: the room-making after the last restore
     * (room.c) may still hold the last one. */
    CHECK(unlink(path) == 0 || errno == ENOENT);
    if ((mode & FW_FILE_MASK) == FW_FILE_MISSING) {
        return 0;
    }
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    if ((mode & FW_FILE_MASK) != FW_FILE_EMPTY) {
        if (mode & FW_SIZE) {
            file_size = le(data, size, FW_SIZE_AT, 5) % (max_file + 1);
        }
        override_records(data, size, header, file_size,
                         img + FUZZ_PAYLOAD_AT, plen);
        CHECK(ftruncate(fd, (off_t)file_size) == 0);
        CHECK(pwrite(fd, header, file_size < CPR_HEADER_SIZE ? file_size :
                     CPR_HEADER_SIZE, 0) >= 0);
        if (file_size > CPR_PAYLOAD_AREA) {
            plen = plen < file_size - CPR_PAYLOAD_AREA ? plen :
                   file_size - CPR_PAYLOAD_AREA;
            CHECK(pwrite(fd, img + FUZZ_PAYLOAD_AT, plen, CPR_PAYLOAD_AREA) ==
                  (ssize_t)plen);
        }
        if (le(data, size, FW_READ_AT, 1) & FW_STALE) {
            fill_stale(fd, CPR_PAYLOAD_AREA + plen,
                       file_size < FW_STALE_END ? file_size : FW_STALE_END);
        }
    }
    CHECK(fstat(fd, &sb) == 0);
    close(fd);
    return (uint64_t)sb.st_blocks * 512;
}

static void check_message(char *err)
{
    size_t n = strlen(path);

    if (!err || strncmp(err, path, n) || strncmp(err + n, ": ", 2)) {
        fprintf(stderr, "message does not start with \"%s: \": %s\n", path,
                err ? err : "(none)");
        abort();
    }
    if (strstr(err, strerror(ENOSPC))) {
        /*
         * A save here needs a few MiB (8 MiB at most for a new or sparse
         * file, a stream of 32 KiB, room like a live payload of a few
         * KiB): a private 160 MiB tmpfs runs out only if the writer
         * allocates for something that is not there, e.g. places the
         * stream above a "live" payload that is not in the file.
         */
        if (mounted) {
            fprintf(stderr, "a save ran out of a 160 MiB tmpfs: %s\n", err);
            abort();
        }
        st.no_space++;
    }
    if (verbose) {
        fprintf(stderr, "refused: %s\n", err);
    }
    free(err);
}

static bool same_record(const CprRecord *a, const CprRecord *b)
{
    return a->version == b->version && a->generation == b->generation &&
           a->flags == b->flags && a->payload_off == b->payload_off &&
           a->payload_len == b->payload_len &&
           a->payload_xxh3 == b->payload_xxh3 &&
           a->ctime_ns == b->ctime_ns && a->cmdline_fp == b->cmdline_fp &&
           a->stream_len == b->stream_len &&
           !strcmp(a->qemu_version, b->qemu_version) &&
           !strcmp(a->kernel_release, b->kernel_release);
}

static bool same_slot(const CprSlots *a, const CprSlots *b, unsigned i)
{
    return a->state[i] == b->state[i] &&
           (a->state[i] != CPR_DECODE_OK ||
            same_record(&a->rec[i], &b->rec[i])) &&
           (a->state[i] != CPR_DECODE_TOO_NEW ||
            (a->rec[i].version == b->rec[i].version &&
             a->rec[i].generation == b->rec[i].generation));
}

/* What a restore finds; gen 0: refused. */
typedef struct Verdict {
    uint64_t gen, len, xxh3, stream_xxh3;
} Verdict;

/* Read the whole stream of @r (not more than @cap bytes) and check it
 * against its record; returns its XXH3. */
static uint64_t read_all(CprReader *r, uint8_t *buf, size_t cap)
{
    const CprRecord *rec = cpr_reader_record(r);
    char *err = NULL;
    size_t len = 0;
    ssize_t n;

    while ((n = cpr_reader_read(r, buf + len, cap - len, &err)) > 0) {
        len += (size_t)n;
        CHECK(len <= rec->stream_len && len < cap);
    }
    CHECK(n == 0 && !err && len == rec->stream_len);
    if (rec->version == 1) {
        CHECK(cpr_record_checksum(1, buf, len) == rec->payload_xxh3);
    }
    return XXH3_64bits(buf, len);
}

static Verdict verdict(void)
{
    static uint8_t buf[MAX_TOTAL + 1];
    Verdict v = { 0 };
    char *err = NULL;
    CprReader *r = cpr_reader_open(path, &err);

    if (!r) {
        free(err);
        return v;
    }
    v.gen = cpr_reader_record(r)->generation;
    v.len = cpr_reader_record(r)->stream_len;
    v.xxh3 = cpr_reader_record(r)->payload_xxh3;
    /* Only a stream the fuzzer could have written is read back whole. */
    if (v.len <= MAX_TOTAL) {
        v.stream_xxh3 = read_all(r, buf, sizeof(buf));
    }
    cpr_reader_close(r);
    return v;
}

/* The payload a save must not touch (FORMAT.md: the newest valid
 * record, if its payload is all in the file). */
typedef struct Live {
    bool present, hashed;
    uint64_t off, len, xxh3;
} Live;

static uint64_t hash_range(const CprImage *f, uint64_t off,
                           uint64_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    uint64_t h;

    CHECK(buf && cpr_image_pread(f, buf, len, off) == (ssize_t)len);
    h = XXH3_64bits(buf, len);
    free(buf);
    return h;
}

static Live live_payload(void)
{
    Live l = { 0 };
    CprImage f;
    const CprSlots *s = &f.slots;
    char *err = NULL;

    if (cpr_image_open_read(path, &f, &err) < 0) {
        free(err);
        return l;
    }
    if (f.sb_state == CPR_DECODE_OK && s->newest >= 0 &&
        s->state[s->newest] == CPR_DECODE_OK) {
        const CprRecord *rec = &s->rec[s->newest];

        l.present = cpr_image_payload_present(&f, rec, &err) &&
                    cpr_reader_payload_verifies(&f, rec);
        free(err);
        l.off = rec->payload_off;
        l.len = rec->payload_len;
        if (l.present && l.len <= MAX_LIVE_HASHED) {
            l.hashed = true;
            l.xxh3 = hash_range(&f, l.off, l.len);
        }
    }
    cpr_image_close(&f);
    return l;
}

/* The live payload kept its bytes, and @rec (NULL: none) lies apart. */
static void check_live(const Live *was, const CprRecord *rec)
{
    CprImage f;
    char *err = NULL;

    if (!was->present) {
        return;
    }
    if (rec) {
        CHECK(was->len == 0 || rec->payload_len == 0 ||
              rec->payload_off >= was->off + was->len ||
              was->off >= rec->payload_off + rec->payload_len);
    }
    if (was->hashed) {
        CHECK(cpr_image_open_read(path, &f, &err) == 0);
        CHECK(hash_range(&f, was->off, was->len) == was->xxh3);
        cpr_image_close(&f);
    }
}

/* The stream: s[0, len / 2), @gap zeros, s[len / 2, len). */
static size_t expected(const uint8_t *s, size_t len, size_t gap,
                       uint8_t *out)
{
    size_t h = len / 2;

    memcpy(out, s, h);
    memset(out + h, 0, gap);
    memcpy(out + h + gap, s + h, len - h);
    return len + gap;
}

/* Write the stream: appends in chunks, or appends then positional
 * writes, the rewrite of the first quarter last or (@lo_first) first
 * (fuzz-writer.h).  Returns false if a write failed (message checked). */
static bool write_stream(QemuTransportOut *t, const uint8_t *s, size_t len,
                         size_t chunk, bool pwrite, size_t gap,
                         bool lo_first)
{
    size_t end = pwrite ? len / 2 : len, done = 0;
    char *err = NULL;

    while (done < end) {
        struct iovec iov[4];
        size_t before = done;
        int n = 0;

        for (; n < 4 && done < end; n++) {
            size_t step = chunk < end - done ? chunk : end - done;

            iov[n] = (struct iovec){ (void *)(s + done), step };
            done += step;
        }
        if (ops->out_writev(t, iov, n, &err) != (ssize_t)(done - before)) {
            check_message(err);
            return false;
        }
    }
    if (pwrite) {
        struct iovec hi = { (void *)(s + end), len - end };
        struct iovec lo = { (void *)s, len / 4 };

        if ((lo_first &&
             ops->out_pwritev(t, &lo, 1, 0, &err) != (ssize_t)(len / 4)) ||
            ops->out_pwritev(t, &hi, 1, (int64_t)(end + gap), &err) !=
            (ssize_t)(len - end) ||
            (!lo_first &&
             ops->out_pwritev(t, &lo, 1, 0, &err) != (ssize_t)(len / 4))) {
            check_message(err);
            return false;
        }
    }
    return true;
}

/* Restore: exactly @exp through in_readv and in_preadv. */
static void restore(const QemuTransportVm *vm, uint64_t gen,
                    const uint8_t *exp, size_t len, size_t rsize,
                    unsigned split)
{
    static uint8_t got[MAX_TOTAL + 1];
    QemuTransportIn *in;
    char *err = NULL;
    size_t n = 0, at = len * split / 256;
    ssize_t got_n;

    in = ops->in_open(path, vm, &err);
    if (!in) {
        fprintf(stderr, "committed, yet in_open refused: %s\n", err);
        abort();
    }
    CHECK(cpr_reader_record((CprReader *)in)->generation == gen);
    do {
        size_t want = sizeof(got) - n;
        struct iovec iov[2] = {
            { got + n, rsize && rsize < want ? rsize / 2 : want },
            { NULL, 0 },
        };

        iov[1] = (struct iovec){ got + n + iov[0].iov_len,
                                 rsize && rsize < want ?
                                 rsize - rsize / 2 : 0 };
        got_n = ops->in_readv(in, iov, 2, &err);
        n += got_n > 0 ? (size_t)got_n : 0;
    } while (got_n > 0 && n < sizeof(got));
    CHECK(got_n == 0 && !err && n == len && !memcmp(got, exp, len));

    /* QEMU's mapped-ram reads: anywhere, short past the end. */
    memset(got, 0, sizeof(got));
    {
        struct iovec lo = { got, at }, hi = { got + at, len - at + 1 };

        CHECK(ops->in_preadv(in, &hi, 1, (int64_t)at, &err) ==
              (ssize_t)(len - at));
        CHECK(ops->in_preadv(in, &lo, 1, 0, &err) == (ssize_t)at);
        CHECK(!err && !memcmp(got, exp, len));
        CHECK(ops->in_preadv(in, &lo, 1, (int64_t)len, &err) == 0 && !err);
    }
    ops->in_close(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t stream[FW_MAX_STREAM], exp[MAX_TOTAL];
    unsigned mode = size > FW_MODE_AT ? data[FW_MODE_AT] : 0;
    size_t len = le(data, size, FW_LEN_AT, 2) % FW_MAX_STREAM;
    size_t chunk = 1 + 37 * (size_t)le(data, size, FW_CHUNK_AT, 1);
    size_t gap = mode & FW_PWRITE ?
                 le(data, size, FW_GAP_AT, 2) % FW_MAX_STREAM : 0;
    uint64_t x = 0x9e3779b97f4a7c15ull * (le(data, size, FW_SEED_AT, 1) + 1);
    uint64_t allocated, expect_gen = 1;
    const QemuTransportVm vm = vm_of(mode);
    CprImage before, after;
    bool had_header, committed = false;
    QemuTransportOut *t;
    Verdict was;
    Live live;
    char *err = NULL;
    struct stat sb;
    size_t total;

    if (!ops) {
        setup();
    }
    st.inputs++;
    allocated = make_file(data, size, mode);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        stream[i] = (uint8_t)x;
    }
    total = expected(stream, len, gap, exp);
    had_header = cpr_image_open_read(path, &before, &err) == 0;
    cpr_image_close(&before);
    free(err);
    err = NULL;
    if (had_header && before.slots.newest >= 0) {
        expect_gen = before.slots.rec[before.slots.newest].generation + 1;
    }
    was = verdict();
    live = live_payload();

    t = ops->out_open(path, &vm, &err);
    if (!t) {
        check_message(err);
    } else {
        if (stat(path, &sb) == 0 &&
            (uint64_t)sb.st_blocks * 512 > allocated + BIG_ALLOC) {
            st.big_alloc++;
            if (getenv("CPR_FUZZ_ALLOC_ABORT")) {
                fprintf(stderr, "out_open allocated %llu bytes (%llu "
                        "before) of a %llu-byte file\n",
                        (unsigned long long)sb.st_blocks * 512,
                        (unsigned long long)allocated,
                        (unsigned long long)sb.st_size);
                abort();
            }
        }
        if (mode & FW_GUEST_WRITES) {
            guest_writes(x);
        }
        if (write_stream(t, stream, len, chunk, mode & FW_PWRITE, gap,
                         le(data, size, FW_READ_AT, 1) & FW_LO_FIRST) &&
            !(mode & FW_ABORT)) {
            if (ops->out_commit(t, &vm, &err) == 0) {
                committed = true;
            } else {
                check_message(err);
            }
        }
        if (!committed) {
            ops->out_abort(t);
        }
        ops->out_close(t);
    }
    st.committed += committed;
    st.failed += !committed && !(t && (mode & FW_ABORT));

    /* The header first: the room-making after a restore holds a lock
     * on the file for a moment. */
    if (committed) {
        unsigned slot = cpr_slot_for(expect_gen);

        CHECK(cpr_image_open_read(path, &after, &err) == 0);
        cpr_image_close(&after);
        CHECK(after.slots.newest == (int)slot &&
              after.slots.rec[slot].generation == expect_gen);
        CHECK(!had_header || same_slot(&before.slots, &after.slots,
                                       1 - slot));
        check_live(&live, &after.slots.rec[slot]);
    } else {
        if (had_header) {
            CHECK(cpr_image_open_read(path, &after, &err) == 0);
            cpr_image_close(&after);
            CHECK(same_slot(&before.slots, &after.slots, 0) &&
                  same_slot(&before.slots, &after.slots, 1));
        }
        check_live(&live, NULL);
    }
    if (!committed) {
        Verdict now = verdict();

        /*
         * What loaded before loads still.  (A refused image may load now:
         * a record whose payload lay past the end of the file, where the
         * save grew it with zeros that match its checksum.  A payload
         * that matches its checksum is the stream that was committed.)
         */
        CHECK(!was.gen || (now.gen == was.gen && now.len == was.len &&
                           now.xxh3 == was.xxh3 &&
                           now.stream_xxh3 == was.stream_xxh3));
        return 0;
    }
    restore(&vm, expect_gen, exp, total,
            61 * (size_t)(le(data, size, FW_READ_AT, 1) & FW_READ_MASK),
            (unsigned)le(data, size, FW_SPLIT_AT, 1));
    fuzz_loaded++;
    return 0;
}
