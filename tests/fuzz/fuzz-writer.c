/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over the save path (see fuzz-writer.h for the input):
 * a real image file made from the input, a save into it through the
 * transport ABI as QEMU drives it (out_open, out_writev / out_pwritev,
 * out_commit or out_abort, out_close), then a restore (in_open).  The
 * whole backend is compiled in, so coverage follows the writer.
 *
 * Checked, besides no crash, assertion, leak or undefined behaviour:
 *  - every failure's message starts with "PATH: ";
 *  - a commit that returned 0 loads through in_open, exactly the stream
 *    written, as the generation after the newest record the file had,
 *    and the other record slot is unchanged;
 *  - a save that did not commit leaves both record slots as they were,
 *    and an image that loaded before still loads the same stream.
 *
 * The file lives in a per-process directory on /dev/shm.  As root, a
 * private 160 MiB tmpfs is mounted there (in a mount namespace of our
 * own, gone with the process), so that sparse files up to 64 GiB cannot
 * make the writer fill the machine's memory; without that, file sizes
 * are capped at 256 MiB.  How often out_open allocated more than 72 MiB
 * for the stream of at most 16 KiB that follows is counted and printed
 * at exit; CPR_FUZZ_ALLOC_ABORT=1 makes it a crash.  CPR_FUZZ_VERBOSE=1
 * prints every refusal.
 */
#include "fuzz-image.h"
#include "fuzz-writer.h"
#include "format.h"
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

unsigned long fuzz_loaded;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } \
} while (0)

#define BIG_ALLOC (72ull << 20)     /* 8 MiB initial + a 64 MiB step */

static const QemuTransportOps *ops;
static char dir[64], path[96];
static bool mounted, verbose;
static uint64_t max_file;
static struct {
    unsigned long inputs, committed, failed, big_alloc, no_space;
} st;

static void cleanup(void)
{
    unlink(path);
    if (mounted) {
        umount2(dir, MNT_DETACH);
    }
    rmdir(dir);
    fprintf(stderr, "fuzz-writer: %lu inputs, %lu committed, %lu failed "
            "(%lu for want of space); out_open allocated more than %llu "
            "MiB %lu times\n", st.inputs, st.committed, st.failed,
            st.no_space, BIG_ALLOC >> 20, st.big_alloc);
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

static void setup(void)
{
    QemuTransportHostInfo host = { 1, 1, "10.0.13-fuzz" };
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
    ops = qemu_transport_plugin_init(&host, &err);
    CHECK(ops && !err);
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
 * uint64_t, for the parameter bytes to pick (fuzz-writer.h). */
static uint64_t pick(unsigned i, bool len, uint64_t file_size)
{
    const uint64_t area = CPR_PAYLOAD_AREA, fs = file_size;
    const uint64_t off[16] = {
        0, 0, area, 2 * area, area + 1, fs, fs - 1, 1ull << 40, 1ull << 62,
        1ull << 63, INT64_MAX, UINT64_MAX, UINT64_MAX - area + 1,
        FW_MAX_FILE, 1ull << 30, 3 * area,
    };
    const uint64_t length[16] = {
        0, 0, 1, 300, area, fs, fs - area, 1ull << 40, 1ull << 60,
        1ull << 62, 1ull << 63, INT64_MAX, UINT64_MAX, UINT64_MAX - area + 1,
        FW_MAX_FILE - area, 2 * area,
    };

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
        CprRecord rec;

        if (!sel || cpr_record_decode(p, CPR_REC_SIZE, &rec) !=
            CPR_DECODE_OK) {
            continue;
        }
        if (sel & 15) {
            rec.payload_off = pick(sel & 15, false, file_size);
        }
        if (sel >> 4) {
            rec.payload_len = pick(sel >> 4, true, file_size);
        }
        if (cpr_record_fits(&rec, CPR_PAYLOAD_AREA + plen)) {
            rec.payload_xxh3 = cpr_record_checksum(rec.version,
                payload + (rec.payload_off - CPR_PAYLOAD_AREA),
                rec.payload_len);
        }
        cpr_record_encode(&rec, p);
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

    /* A new inode each time: a restore's populator may still hold the
     * last one (plugin.c in_close). */
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
    st.no_space += strstr(err, strerror(ENOSPC)) != NULL;
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
    uint64_t gen, len, xxh3;
} Verdict;

/* Read the whole stream of @r and check it against its record. */
static void read_all(CprReader *r, uint8_t *buf, size_t cap, size_t *len)
{
    const CprRecord *rec = cpr_reader_record(r);
    char *err = NULL;
    ssize_t n;

    *len = 0;
    while ((n = cpr_reader_read(r, buf + *len, cap - *len, &err)) > 0) {
        *len += (size_t)n;
        CHECK(*len <= rec->payload_len && *len < cap);
    }
    CHECK(n == 0 && !err && *len == rec->payload_len);
    CHECK(cpr_record_checksum(rec->version, buf, *len) ==
          rec->payload_xxh3);
}

static Verdict verdict(void)
{
    static uint8_t buf[FW_MAX_STREAM + 1];
    Verdict v = { 0 };
    char *err = NULL;
    CprReader *r = cpr_reader_open(path, &err);
    size_t len;

    if (!r) {
        free(err);
        return v;
    }
    v.gen = cpr_reader_record(r)->generation;
    v.len = cpr_reader_record(r)->payload_len;
    v.xxh3 = cpr_reader_record(r)->payload_xxh3;
    /* Only a stream the fuzzer could have written is read back whole. */
    if (v.len <= FW_MAX_STREAM) {
        read_all(r, buf, sizeof(buf), &len);
    }
    cpr_reader_close(r);
    return v;
}

/* Write the stream: appends in chunks, or appends then positional
 * writes.  Returns false if a write failed (message checked). */
static bool write_stream(QemuTransportOut *t, const uint8_t *s, size_t len,
                         size_t chunk, bool pwrite)
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

        if (ops->out_pwritev(t, &hi, 1, (off_t)end, &err) !=
            (ssize_t)(len - end) ||
            ops->out_pwritev(t, &lo, 1, 0, &err) != (ssize_t)(len / 4)) {
            check_message(err);
            return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t stream[FW_MAX_STREAM], got[FW_MAX_STREAM + 1];
    unsigned mode = size > FW_MODE_AT ? data[FW_MODE_AT] : 0;
    size_t len = le(data, size, FW_LEN_AT, 2) % FW_MAX_STREAM;
    size_t chunk = 1 + 37 * (size_t)le(data, size, FW_CHUNK_AT, 1);
    uint64_t x = 0x9e3779b97f4a7c15ull * (le(data, size, FW_SEED_AT, 1) + 1);
    uint64_t allocated, expect_gen = 1;
    CprImageHeader before, after;
    bool had_header, committed = false;
    QemuTransportOut *t;
    Verdict was;
    char *err = NULL;
    struct stat sb;

    if (!ops) {
        setup();
    }
    st.inputs++;
    allocated = make_file(data, size, mode);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        stream[i] = (uint8_t)x;
    }
    had_header = cpr_reader_inspect(path, &before, &err) == 0;
    free(err);
    err = NULL;
    if (had_header && before.slots.newest >= 0) {
        expect_gen = before.slots.rec[before.slots.newest].generation + 1;
    }
    was = verdict();

    t = ops->out_open(path, &err);
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
        if (write_stream(t, stream, len, chunk, mode & FW_PWRITE) &&
            !(mode & FW_ABORT)) {
            if (ops->out_commit(t, &err) == 0) {
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

    /* The header first: a restore's in_close starts a populator that
     * may lock the file for a moment. */
    if (committed) {
        unsigned slot = cpr_slot_for(expect_gen);

        CHECK(cpr_reader_inspect(path, &after, &err) == 0);
        CHECK(after.slots.newest == (int)slot &&
              after.slots.rec[slot].generation == expect_gen);
        CHECK(!had_header || same_slot(&before.slots, &after.slots,
                                       1 - slot));
    } else if (had_header) {
        CHECK(cpr_reader_inspect(path, &after, &err) == 0);
        CHECK(same_slot(&before.slots, &after.slots, 0) &&
              same_slot(&before.slots, &after.slots, 1));
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
                           now.xxh3 == was.xxh3));
        return 0;
    }
    {
        QemuTransportIn *in = ops->in_open(path, &err);
        size_t n = 0;
        ssize_t got_n;

        if (!in) {
            fprintf(stderr, "committed, yet in_open refused: %s\n", err);
            abort();
        }
        CHECK(cpr_reader_record((CprReader *)in)->generation == expect_gen);
        do {
            struct iovec iov = { got + n, sizeof(got) - n };

            got_n = ops->in_readv(in, &iov, 1, &err);
            n += got_n > 0 ? (size_t)got_n : 0;
        } while (got_n > 0 && n < sizeof(got));
        CHECK(got_n == 0 && !err && n == len && !memcmp(got, stream, len));
        ops->in_close(in);
    }
    fuzz_loaded++;
    return 0;
}
