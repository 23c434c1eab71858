/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Systematic corruption of real saved images: every corruption below must
 * make cpr_reader_open() refuse with "PATH: reason" (no crash, no hang, no
 * read outside the file).  A damaged *newest record* is the one exception
 * by design (FORMAT.md: torn commit -> the older record is used); those
 * cases are checked to load exactly the older generation and are counted
 * separately, as are damages that leave the newest image loadable.
 *
 * VM descriptions (FORMAT.md): any flipped bit fails the payload checksum;
 * hostile descriptions re-signed as a forger would (cut anywhere, every
 * word set to all ones or zeros, header fields, trailing junk, records
 * whose stream length does not fit) are refused as malformed or not
 * candidates, or decode and then end in a verdict of the binding checks
 * against the VM the image was saved from, never in a crash.
 */
#include "binding.h"
#include "format.h"
#include "reader.h"
#include "unit-util.h"
#include "vmdesc.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MiB (1ull << 20)

static struct {
    unsigned tried, refused, accepted;
    unsigned fallbacks, harmless;   /* loads, by design; not corruptions */
} count;

/* A real saved image kept in memory, and a work copy on disk. */
typedef struct Image {
    const char *name;
    char *path;         /* the work copy */
    uint8_t *data;      /* pristine bytes */
    size_t size;
    CprSlots slots;
    int newest, older;  /* slot indices; older is -1 if none */
} Image;

static Image one, two, three;

static char *path_of(const char *name)
{
    return tu_path(name);
}

/* ---- verdicts ---------------------------------------------------------- */

/* The core assertion: refused, and the message names the file and @what. */
static void expect_refused(const char *path, const char *what,
                           const char *why)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(path, &err);
    char *prefix = g_strdup_printf("%s: ", path);

    count.tried++;
    if (r) {
        count.accepted++;
        g_printerr("ACCEPTED corruption of %s: %s\n", path, why);
        cpr_reader_close(r);
    } else if (!g_str_has_prefix(err, prefix) || !strstr(err, what)) {
        g_error("%s: message \"%s\" lacks \"%s\" (%s)", path, err, what, why);
    } else {
        count.refused++;
    }
    free(err);
    g_free(prefix);
}

/* Loads, and serves the generation in @slot of the pristine image. */
static void expect_loads(const Image *im, int slot, const char *why)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(im->path, &err);

    if (!r) {
        g_error("%s: refused (%s): %s", im->path, why, err);
    }
    g_assert_cmpuint(cpr_reader_record(r)->generation, ==,
                     im->slots.rec[slot].generation);
    cpr_reader_close(r);
}

/* ---- images ------------------------------------------------------------ */

static void save(const char *path, size_t len, unsigned seed)
{
    static const CprHost host = { "10.0.13-corrupt", NULL, NULL };
    char *err = NULL;
    CprWriter *w = cpr_writer_open_vm(path, &host, NULL, &err);
    uint8_t *buf = g_malloc(len);

    g_assert_nonnull(w);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)((i * 2654435761u) >> 13 ^ seed);
    }
    g_assert_cmpint(cpr_writer_append(w, buf, len, &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    cpr_writer_close(w);
    g_free(buf);
}

/* Odd lengths, so that end +/- 1 are interesting. */
static void make_image(Image *im, const char *name, int gens)
{
    static const size_t lens[] = { 70001, 90003, 50005 };
    gsize size;

    im->name = name;
    im->path = path_of(name);
    for (int g = 0; g < gens; g++) {
        save(im->path, lens[g], (unsigned)g);
    }
    g_assert_true(g_file_get_contents(im->path, (char **)&im->data, &size,
                                      NULL));
    im->size = size;
    cpr_slots_decode(im->data, &im->slots);
    im->newest = im->slots.newest;
    im->older = im->slots.state[!im->newest] == CPR_DECODE_OK ?
                !im->newest : -1;
    g_assert_cmpint(im->newest, ==, cpr_slot_for((uint64_t)gens));
    expect_loads(im, im->newest, "pristine");
}

/* Overwrite bytes of the work copy / restore them from the pristine one. */
static void poke(const Image *im, uint64_t off, const void *buf, size_t len)
{
    int fd = open(im->path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, len, (off_t)off), ==, (ssize_t)len);
    close(fd);
}

static void restore(const Image *im, uint64_t off, size_t len)
{
    poke(im, off, im->data + off, len);
}

static void flip(const Image *im, uint64_t off, int bit)
{
    uint8_t b = im->data[off] ^ (uint8_t)(1u << bit);

    poke(im, off, &b, 1);
}

static void write_record(const Image *im, int slot, const CprRecord *rec)
{
    uint8_t buf[CPR_REC_SIZE];

    cpr_record_encode(rec, buf);
    poke(im, CPR_SLOT_OFFSET(slot), buf, sizeof(buf));
}

static const CprRecord *newest_rec(const Image *im)
{
    return &im->slots.rec[im->newest];
}

/* ---- the corruptions --------------------------------------------------- */

/* Newest payload: first, last and ~40 sampled bytes.  No fallback. */
static void payload_flips(const Image *im)
{
    const CprRecord *rec = newest_rec(im);
    uint64_t n = rec->payload_len;

    for (uint64_t i = 0; i < 42; i++) {
        uint64_t pos = i == 41 ? n - 1 : i * (n / 41);

        flip(im, rec->payload_off + pos, (int)(i % 8));
        expect_refused(im->path, "payload checksum mismatch", "payload bit");
        restore(im, rec->payload_off + pos, 1);
    }
    if (im->older >= 0) {
        /* The older payload is not the one loaded: harmless. */
        const CprRecord *old = &im->slots.rec[im->older];

        flip(im, old->payload_off, 0);
        expect_loads(im, im->newest, "older payload bit");
        restore(im, old->payload_off, 1);
        count.harmless++;
    }
}

/* Every bit of the superblock. */
static void superblock_flips(const Image *im)
{
    for (unsigned bit = 0; bit < CPR_SB_SIZE * 8; bit++) {
        flip(im, bit / 8, (int)(bit % 8));
        expect_refused(im->path, "no valid superblock", "superblock bit");
        restore(im, bit / 8, 1);
    }
}

/*
 * Every bit of the newest record.  With an older record present, that
 * is a torn commit and must load the older generation; with both records
 * flipped, or no older one, it must be refused.
 */
static void record_flips(const Image *im)
{
    uint64_t nr = CPR_SLOT_OFFSET(im->newest);

    for (unsigned bit = 0; bit < CPR_REC_SIZE * 8; bit++) {
        flip(im, nr + bit / 8, (int)(bit % 8));
        if (im->older < 0) {
            expect_refused(im->path, "no committed image (all commit "
                           "records are damaged)", "record bit");
        } else {
            expect_loads(im, im->older, "newest record bit");
            count.fallbacks++;
            flip(im, CPR_SLOT_OFFSET(im->older) + bit / 8, (int)(bit % 8));
            expect_refused(im->path, "no committed image (all commit "
                           "records are damaged)", "both records bit");
            restore(im, CPR_SLOT_OFFSET(im->older) + bit / 8, 1);
        }
        restore(im, nr + bit / 8, 1);
    }
}

/* Valid checksums, invalid fields: never a candidate. */
static void record_fields(const Image *im)
{
    const char *what = "no committed image";
    CprRecord rec = *newest_rec(im);

    g_assert_cmpint(im->older, <, 0);
    rec.generation = 0;
    write_record(im, im->newest, &rec);
    expect_refused(im->path, what, "generation 0");
    rec = *newest_rec(im);
    rec.generation += 1;    /* wrong slot */
    write_record(im, im->newest, &rec);
    expect_refused(im->path, what, "generation in the wrong slot");
    rec = *newest_rec(im);
    rec.flags = 1ull << 63;
    write_record(im, im->newest, &rec);
    expect_refused(im->path, what, "unknown flag");
    rec = *newest_rec(im);
    rec.flags = CPR_REC_FLAG_INVALIDATED;
    write_record(im, im->newest, &rec);
    expect_refused(im->path, "was invalidated", "invalidated");
    restore(im, CPR_SLOT_OFFSET(im->newest), CPR_REC_SIZE);
    /* Checksummed bytes the encoder never produces: text after the NUL,
     * padding set.  Re-sign by hand. */
    for (unsigned off = 64 + 20; off < 168; off += 40) {
        uint8_t buf[CPR_REC_SIZE];
        uint64_t sum;

        memcpy(buf, im->data + CPR_SLOT_OFFSET(im->newest), sizeof(buf));
        buf[off] = 'x';
        buf[off + 1] = 0;
        sum = XXH3_64bits(buf, CPR_REC_SIZE - 8);
        for (int i = 0; i < 8; i++) {
            buf[CPR_REC_SIZE - 8 + i] = (uint8_t)(sum >> (8 * i));
        }
        poke(im, CPR_SLOT_OFFSET(im->newest), buf, sizeof(buf));
        expect_refused(im->path, what, "string/padding garbage");
    }
    restore(im, CPR_SLOT_OFFSET(im->newest), CPR_REC_SIZE);
}

/* Re-signed records whose payload lies (partly) outside the file. */
static void record_bounds(const Image *im)
{
    const CprRecord *orig = newest_rec(im);
    uint64_t sz = im->size, len = orig->payload_len;
    const uint64_t cases[][2] = {
        { 0, len }, { CPR_BLOCK_SIZE, len }, { CPR_PAYLOAD_AREA - 1, len },
        { sz, 1 }, { sz + 1, 0 }, { sz - len + 1, len },
        { CPR_PAYLOAD_AREA, sz - CPR_PAYLOAD_AREA + 1 },
        { CPR_PAYLOAD_AREA, UINT64_MAX },
        { CPR_PAYLOAD_AREA, UINT64_MAX - CPR_PAYLOAD_AREA + 1 }, /* wraps */
        { UINT64_MAX, 1 }, { UINT64_MAX - 7, 16 }, { UINT64_MAX, 0 },
        { orig->payload_off, sz - orig->payload_off + 1 },
        { 1ull << 63, 1ull << 63 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        CprRecord rec = *orig;

        rec.payload_off = cases[i][0];
        rec.payload_len = cases[i][1];
        rec.stream_len = rec.payload_len;   /* a valid record otherwise */
        write_record(im, im->newest, &rec);
        expect_refused(im->path, "lies outside the file", "bounds");
    }
    restore(im, CPR_SLOT_OFFSET(im->newest), CPR_REC_SIZE);
}

/* Envelope of version @version and @size bytes, correctly signed. */
static void write_envelope(const Image *im, uint64_t off, const char *magic,
                           uint32_t version, uint32_t size)
{
    uint8_t buf[CPR_BLOCK_SIZE];
    uint64_t sum;

    memcpy(buf, im->data + off, CPR_BLOCK_SIZE);
    memcpy(buf, magic, CPR_MAGIC_LEN);
    for (int i = 0; i < 4; i++) {
        buf[8 + i] = (uint8_t)(version >> (8 * i));
        buf[12 + i] = (uint8_t)(size >> (8 * i));
    }
    sum = XXH3_64bits(buf, size - 8);
    for (int i = 0; i < 8; i++) {
        buf[size - 8 + i] = (uint8_t)(sum >> (8 * i));
    }
    poke(im, off, buf, sizeof(buf));
}

/* A newer format (possibly with appended fields) is refused, not guessed. */
static void newer_version(const Image *im)
{
    static const struct { uint32_t version, size; } v[] = {
        { 1, 0 }, { 1, 8 }, { 0xffffffffu, 0 }, { 6, 4096 - 192 },
    };
    uint64_t nr = CPR_SLOT_OFFSET(im->newest);

    for (size_t i = 0; i < G_N_ELEMENTS(v); i++) {
        uint32_t rv = CPR_REC_VERSION + v[i].version;
        uint32_t sv = CPR_SB_VERSION + v[i].version;
        char *what = g_strdup_printf("image format version %u is newer than "
                                     "this transport (%u)", rv,
                                     CPR_REC_VERSION);

        if (v[i].version == 0xffffffffu) {
            rv = sv = 0xffffffffu;
            g_free(what);
            what = g_strdup_printf("image format version %u is newer than "
                                   "this transport (%u)", rv,
                                   CPR_REC_VERSION);
        }
        write_envelope(im, nr, CPR_REC_MAGIC, rv, CPR_REC_SIZE + v[i].size);
        expect_refused(im->path, what, "newer record");
        restore(im, nr, CPR_BLOCK_SIZE);
        g_free(what);
        what = g_strdup_printf("image format version %u (superblock) is "
                               "newer than this transport (%u)", sv,
                               CPR_SB_VERSION);
        write_envelope(im, CPR_SB_OFFSET, CPR_SB_MAGIC, sv,
                       CPR_SB_SIZE + (v[i].size > 4096 - CPR_SB_SIZE ?
                                      0 : v[i].size));
        expect_refused(im->path, what, "newer superblock");
        restore(im, CPR_SB_OFFSET, CPR_BLOCK_SIZE);
        g_free(what);
    }
}

static void truncate_to(const Image *im, uint64_t len)
{
    g_assert_cmpint(truncate(im->path, (off_t)len), ==, 0);
}

/* Truncation at every region boundary and one byte either side. */
static void truncations(const Image *im)
{
    uint64_t end = newest_rec(im)->payload_off + newest_rec(im)->payload_len;
    GArray *b = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    uint64_t fixed[] = {
        0, 8, CPR_SB_SIZE, CPR_BLOCK_SIZE, CPR_SLOT_OFFSET(0) + CPR_REC_SIZE,
        CPR_SLOT_OFFSET(1), CPR_SLOT_OFFSET(1) + CPR_REC_SIZE,
        CPR_HEADER_SIZE, CPR_PAYLOAD_AREA, im->size,
    };

    g_array_append_vals(b, fixed, G_N_ELEMENTS(fixed));
    for (int s = 0; s < (int)CPR_NR_SLOTS; s++) {
        if (im->slots.state[s] == CPR_DECODE_OK) {
            const CprRecord *r = &im->slots.rec[s];
            uint64_t e = r->payload_off + r->payload_len;

            g_array_append_val(b, r->payload_off);
            g_array_append_val(b, e);
        }
    }
    for (guint i = 0; i < b->len; i++) {
        for (int d = -1; d <= 1; d++) {
            uint64_t t = g_array_index(b, uint64_t, i) + (uint64_t)d;

            if (t >= im->size) {    /* not a truncation (or t = -1) */
                continue;
            }
            truncate_to(im, t);
            if (t >= end) {
                /* Only bytes after the newest payload are gone. */
                expect_loads(im, im->newest, "truncated after payload");
                count.harmless++;
            } else {
                expect_refused(im->path, t < CPR_HEADER_SIZE ? "too short" :
                               "lies outside the file", "truncated");
            }
            restore(im, t, im->size - t);
        }
    }
    g_array_free(b, TRUE);
}

static void test_images(gconstpointer data)
{
    const Image *im = data;

    payload_flips(im);
    superblock_flips(im);
    record_flips(im);
    if (im->older < 0) {
        record_fields(im);
    }
    record_bounds(im);
    newer_version(im);
    truncations(im);
    expect_loads(im, im->newest, "all restored");
}

/* Zero-filled and random files, plus a valid superblock with no record. */
static void test_junk_files(void)
{
    static const size_t sizes[] = {
        0, 1, 63, 64, 4095, 4096, 12287, 12288, 65536, 2 * MiB - 1, 2 * MiB,
        2 * MiB + 1, 4 * MiB,
    };
    char *path = path_of("junk");
    GRand *rand = g_rand_new_with_seed(42);
    uint8_t *buf = g_malloc(4 * MiB);

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        const char *what = sizes[i] < CPR_HEADER_SIZE ? "too short" :
                           "no valid superblock";

        memset(buf, 0, sizes[i]);
        g_assert_true(g_file_set_contents(path, (char *)buf,
                                          (gssize)sizes[i], NULL));
        expect_refused(path, what, "zero-filled");
        for (size_t j = 0; j < sizes[i]; j++) {
            buf[j] = (uint8_t)g_rand_int(rand);
        }
        g_assert_true(g_file_set_contents(path, (char *)buf,
                                          (gssize)sizes[i], NULL));
        expect_refused(path, what, "random");
    }
    /* Superblock intact, both slots zero: a file nobody committed to. */
    memset(buf, 0, 4 * MiB);
    memcpy(buf, one.data, CPR_BLOCK_SIZE);
    g_assert_true(g_file_set_contents(path, (char *)buf, 4 * MiB, NULL));
    expect_refused(path, "no committed image", "no record");
    /* Random bytes in both slots: damaged, not empty. */
    for (size_t j = CPR_BLOCK_SIZE; j < CPR_HEADER_SIZE; j++) {
        buf[j] = (uint8_t)g_rand_int(rand);
    }
    g_assert_true(g_file_set_contents(path, (char *)buf, 4 * MiB, NULL));
    expect_refused(path, "no committed image (all commit records are "
                   "damaged)", "random records");
    g_rand_free(rand);
    g_free(buf);
    g_free(path);
}

static void refused_as_nobody(const char *path)
{
    char *err = NULL;

    if (cpr_reader_open(path, &err) || !strstr(err, "Permission denied") ||
        strncmp(err, path, strlen(path)) != 0) {
        _exit(1);
    }
}

/* Not a file we can map: must be refused quickly (a FIFO must not block). */
static void test_not_files(void)
{
    char *d = path_of("dir"), *fifo = path_of("fifo"), *loop = path_of("loop");
    char *dangling = path_of("dangling"), *chr = path_of("chr");
    char *unreadable = path_of("unreadable");

    g_assert_cmpint(mkdir(d, 0755), ==, 0);
    expect_refused(d, "is a directory", "directory");
    g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
    expect_refused(fifo, "is a FIFO", "FIFO");
    g_assert_cmpint(symlink("loop", loop), ==, 0);
    expect_refused(loop, "Too many levels of symbolic links", "loop");
    g_assert_cmpint(symlink("no-such-file", dangling), ==, 0);
    expect_refused(dangling, "No such file or directory", "dangling");
    g_assert_cmpint(symlink("/dev/zero", chr), ==, 0);
    expect_refused(chr, "is a character device", "char device");

    g_assert_true(g_file_set_contents(unreadable, (char *)one.data,
                                      (gssize)one.size, NULL));
    g_assert_cmpint(chmod(unreadable, 0), ==, 0);
    count.tried++;
    /* Root reads anything: be nobody for real. */
    tu_run_as_nobody(refused_as_nobody, unreadable);
    count.refused++;
    g_free(d); g_free(fifo); g_free(loop); g_free(dangling); g_free(chr);
    g_free(unreadable);
}

/* ---- hostile VM descriptions ------------------------------------------ */

#define VM_STREAM 5000

static char *vm_image;
static uint8_t *vm_stream;
static uint8_t *vm_desc;            /* the real description, as saved */
static size_t vm_desc_len;
static CprRecord vm_rec;            /* the real record */
static CprRamBlock vm_blocks[2];    /* its RAM, mapped for the checks */
static QemuTransportVm vm_qemu;
static CprVm vm_vm;

/* A save of a VM with two RAM blocks: a file and anonymous memory. */
static void make_vm_image(void)
{
    static const CprHost host = { "10.0.13-corrupt", NULL, NULL };
    char *ram = path_of("vm.ram"), *err = NULL;
    int fd = open(ram, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    CprRamBlock *b = vm_blocks;
    CprReader *r;
    CprWriter *w;
    uint8_t *file, *anon;

    g_assert_cmpint(ftruncate(fd, 1 * MiB), ==, 0);
    file = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    anon = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    g_assert_true(file != MAP_FAILED && anon != MAP_FAILED);
    memset(file, 1, MiB);
    memset(anon, 2, MiB);
    b[0] = (CprRamBlock){ "pc.ram", file, MiB, fd, 0, CPR_RAM_SHARED };
    b[1] = (CprRamBlock){ "/objects/m1", anon, MiB, -1, 0, CPR_RAM_SHARED };
    vm_qemu = cpr_vm_abi(b, 2, "pc-q35-10.0", "qemu64", NULL, 0);
    vm_vm = (CprVm){ &vm_qemu, NULL, 0 };
    vm_image = path_of("vm.cpr");
    vm_stream = g_malloc(VM_STREAM);
    for (size_t i = 0; i < VM_STREAM; i++) {
        vm_stream[i] = (uint8_t)(i * 13);
    }
    w = cpr_writer_open_vm(vm_image, &host, &vm_vm, &err);
    g_assert_nonnull(w);
    g_assert_cmpint(cpr_writer_append(w, vm_stream, VM_STREAM, &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit_vm(w, &vm_vm, &err), ==, 0);
    cpr_writer_close(w);
    g_free(ram);
    r = cpr_reader_open(vm_image, &err);
    g_assert_nonnull(r);
    vm_rec = *cpr_reader_record(r);
    cpr_reader_close(r);
    g_assert_cmpuint(vm_rec.stream_len, ==, VM_STREAM);
    vm_desc_len = vm_rec.payload_len - vm_rec.stream_len;
    vm_desc = g_malloc(vm_desc_len);
    fd = open(vm_image, O_RDONLY);
    g_assert_cmpint(pread(fd, vm_desc, vm_desc_len,
                          (off_t)(vm_rec.payload_off + VM_STREAM)), ==,
                    (ssize_t)vm_desc_len);
    close(fd);
}

/* Put @desc after the stream, with a record that vouches for it (the
 * payload checksum and the record re-signed, as a forger would). */
static void forge_desc(const void *desc, size_t len)
{
    int fd = open(vm_image, O_WRONLY);
    CprRecord rec = vm_rec;
    uint8_t buf[CPR_REC_SIZE];
    uint8_t *payload = g_malloc(VM_STREAM + len);

    memcpy(payload, vm_stream, VM_STREAM);
    memcpy(payload + VM_STREAM, desc, len);
    rec.payload_len = VM_STREAM + len;
    rec.payload_xxh3 = cpr_record_checksum(rec.version, payload,
                                           rec.payload_len);
    g_free(payload);
    g_assert_cmpint(pwrite(fd, desc, len,
                           (off_t)(rec.payload_off + VM_STREAM)), ==,
                    (ssize_t)len);
    cpr_record_encode(&rec, buf);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec.generation))), ==,
                    sizeof(buf));
    close(fd);
}

static void forge_record(const CprRecord *rec)
{
    int fd = open(vm_image, O_WRONLY);
    uint8_t buf[CPR_REC_SIZE];

    cpr_record_encode(rec, buf);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(rec->generation))), ==,
                    sizeof(buf));
    close(fd);
}

/*
 * Loads (a well-formed description); then the binding checks against
 * the VM it was saved from end in a verdict without crashing: with
 * @must_refuse a refusal naming the image or a RAM file.
 */
static void expect_binding(const char *why, bool must_refuse)
{
    static const CprHost host = { "10.0.13-corrupt", NULL, NULL };
    char *err = NULL;
    CprReader *r = cpr_reader_open(vm_image, &err);

    if (!r) {
        g_error("%s: refused (%s): %s", vm_image, why, err);
    }
    count.tried++;
    if (cpr_binding_verify(vm_image, cpr_reader_record(r),
                           cpr_reader_vmdesc(r), &host, &vm_vm, &err) == 0) {
        if (must_refuse) {
            count.accepted++;
            g_printerr("ACCEPTED %s: %s\n", vm_image, why);
        } else {
            count.refused++;
            count.harmless++;
        }
    } else if (!strstr(err, vm_image) && !strstr(err, "vm.ram") &&
               !strstr(err, "RAM block")) {
        g_error("message \"%s\" names no file (%s)", err, why);
    } else {
        count.refused++;
    }
    free(err);
    cpr_reader_close(r);
}

static void expect_binding_refused(const char *why)
{
    expect_binding(why, true);
}

/* A description that decodes, with hostile values: long and odd names
 * and paths, huge sizes, control characters. */
static void hostile_values(void)
{
    const char *why = NULL;
    CprVmdesc *d = NULL;
    uint8_t *buf;
    size_t len;
    char *long_path = g_malloc(CPR_VMDESC_MAX_STR + 1);

    memset(long_path, 'p', CPR_VMDESC_MAX_STR);
    long_path[CPR_VMDESC_MAX_STR] = 0;
    g_assert_cmpint(cpr_vmdesc_decode(vm_desc, vm_desc_len, &d, &why), ==,
                    CPR_VMDESC_OK);
    free(d->blocks[0].name);
    d->blocks[0].name = strdup("\x1b[2J\n\t%s%n");
    d->blocks[0].size = UINT64_MAX;
    d->blocks[0].nr_samples = 64;
    for (uint32_t i = 0; i < 64; i++) {
        d->blocks[0].samples[i].index = UINT64_MAX / 4096 - i;
    }
    free(d->blocks[0].file.path);
    d->blocks[0].file.path = long_path;
    d->blocks[0].file.mtime_sec = INT64_MIN;
    d->blocks[1].fd_offset = UINT64_MAX;
    free(d->machine);
    d->machine = strdup("%s%s%s%n");
    d->argv_len = 0;
    buf = cpr_vmdesc_encode(d, &len);
    forge_desc(buf, len);
    expect_binding_refused("hostile values");
    free(buf);
    cpr_vmdesc_free(d);
}

static void test_vm_descriptions(void)
{
    static const struct { uint32_t at; uint32_t value; } pokes[] = {
        { 8, 3 },                   /* version too new */
        { 8, 0 },                   /* version 0 */
        { 12, 1 },                  /* reserved bits */
        { 20, 0xffffffffu },        /* the first entry's length */
        { 20, 7 },                  /* the seed's length */
        { 16, 8 },                  /* the seed is a RAM block now */
    };
    const char *malformed = "has a malformed VM description";
    uint8_t *buf;
    CprRecord rec;

    make_vm_image();
    buf = g_malloc(vm_desc_len + 64);
    /* Any bit of the description: the payload checksum. */
    for (size_t i = 0; i < vm_desc_len; i++) {
        uint8_t b = vm_desc[i] ^ (uint8_t)(1u << (i % 8));
        int fd = open(vm_image, O_WRONLY);

        g_assert_cmpint(pwrite(fd, &b, 1, (off_t)(vm_rec.payload_off +
                                                  VM_STREAM + i)), ==, 1);
        close(fd);
        expect_refused(vm_image, "payload checksum mismatch", "desc bit");
        forge_desc(vm_desc, vm_desc_len);
    }
    /* Every cut, re-signed: malformed, or whole entries fewer (which the
     * binding then refuses: blocks missing from the record). */
    for (size_t n = 0; n < vm_desc_len; n++) {
        const char *why = NULL;
        CprVmdesc *d = NULL;

        forge_desc(vm_desc, n);
        if (cpr_vmdesc_decode(vm_desc, n, &d, &why) == CPR_VMDESC_OK) {
            expect_binding_refused("description cut between entries");
        } else {
            expect_refused(vm_image, n ? malformed :
                           "has a malformed VM description (missing)",
                           "description cut");
        }
        cpr_vmdesc_free(d);
    }
    /* Fields of the header and the first entries, re-signed. */
    for (size_t i = 0; i < G_N_ELEMENTS(pokes); i++) {
        memcpy(buf, vm_desc, vm_desc_len);
        for (int k = 0; k < 4; k++) {
            buf[pokes[i].at + k] = (uint8_t)(pokes[i].value >> (8 * k));
        }
        forge_desc(buf, vm_desc_len);
        expect_refused(vm_image, pokes[i].value == 3 && pokes[i].at == 8 ?
                       "describes its VM in a newer format than this "
                       "transport knows" : malformed, "description field");
    }
    /* Every 4-byte little-endian field set to 0xffffffff, then to 0. */
    for (size_t at = CPR_VMDESC_HEADER; at + 4 <= vm_desc_len; at += 4) {
        for (int v = 0; v < 2; v++) {
            const char *why = NULL;
            CprVmdesc *d = NULL;
            CprVmdescResult res;

            memcpy(buf, vm_desc, vm_desc_len);
            memset(buf + at, v ? 0 : 0xff, 4);
            forge_desc(buf, vm_desc_len);
            res = cpr_vmdesc_decode(buf, vm_desc_len, &d, &why);
            if (res == CPR_VMDESC_OK) {
                /* Values (a hash, a time, an inode, a path) the decoder
                 * cannot judge: loads, and the binding decides. */
                expect_binding("description value", false);
            } else {
                expect_refused(vm_image, malformed, "description word");
            }
            cpr_vmdesc_free(d);
        }
    }
    /* Junk after a whole description. */
    memcpy(buf, vm_desc, vm_desc_len);
    memcpy(buf + vm_desc_len, "\x01\x00\x00\x00\xff\xff", 6);
    forge_desc(buf, vm_desc_len + 6);
    expect_refused(vm_image, malformed, "trailing junk");
    hostile_values();
    /* Records whose stream length does not fit: not candidates. */
    forge_desc(vm_desc, vm_desc_len);
    rec = vm_rec;
    rec.stream_len = rec.payload_len + 1;
    forge_record(&rec);
    expect_refused(vm_image, "no committed image", "stream past payload");
    rec = vm_rec;
    rec.payload_len = rec.stream_len + CPR_VMDESC_MAX + 1;
    forge_record(&rec);
    expect_refused(vm_image, "no committed image", "description too long");
    rec = vm_rec;
    rec.stream_len = rec.payload_len;   /* a version-2 record without one */
    forge_record(&rec);
    expect_refused(vm_image, "has a malformed VM description (missing)",
                   "no description");
    /* Put back, it loads and binds to its VM again. */
    forge_record(&vm_rec);
    {
        static const CprHost host = { "10.0.13-corrupt", NULL, NULL };
        char *err = NULL;
        CprReader *r = cpr_reader_open(vm_image, &err);

        g_assert_nonnull(r);
        g_assert_cmpint(cpr_binding_verify(vm_image, cpr_reader_record(r),
                                           cpr_reader_vmdesc(r), &host,
                                           &vm_vm, &err), ==, 0);
        cpr_reader_close(r);
    }
    g_free(buf);
}

static int summary(void)
{
    printf("corruptions: %u tried, %u refused, %u accepted\n", count.tried,
           count.refused, count.accepted);
    printf("by design, loaded: %u torn-newest-record fallbacks to the older "
           "generation, %u harmless (older payload / bytes after the "
           "newest payload / VM description values the binding accepts, "
           "e.g. the recorded path of a file found by inode)\n",
           count.fallbacks, count.harmless);
    return count.accepted == 0 && count.refused == count.tried &&
           count.tried > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    alarm(120);     /* a hang (say, on the FIFO) fails instead of waiting */
    make_image(&one, "one-generation", 1);
    make_image(&two, "two-generations", 2);     /* newest above older */
    make_image(&three, "three-generations", 3); /* newest below older */
    g_test_add_data_func("/corrupt/image/one", &one, test_images);
    g_test_add_data_func("/corrupt/image/two", &two, test_images);
    g_test_add_data_func("/corrupt/image/three", &three, test_images);
    g_test_add_func("/corrupt/junk-files", test_junk_files);
    g_test_add_func("/corrupt/not-files", test_not_files);
    g_test_add_func("/corrupt/vm-descriptions", test_vm_descriptions);
    ret = g_test_run();
    /* After all of them: GTest runs sub-suites after plain tests. */
    ret |= summary();
    return ret;
}
