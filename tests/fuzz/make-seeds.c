/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write the seed corpora: real images made by the writer, in the compact
 * layout of fuzz-image.h, cut after the payload area bytes that matter;
 * the VM descriptions in them, for fuzz-vmdesc; and, with a third
 * directory, saves into those images for fuzz-writer (fuzz-writer.h).
 * The saves describe a VM with two RAM blocks: a file and anonymous
 * memory.
 * Usage: fuzz-make-seeds IMAGE-OUTDIR VMDESC-OUTDIR [WRITER-OUTDIR]
 */
#include "fuzz-image.h"
#include "fuzz-writer.h"
#include "binding.h"
#include "format.h"
#include "vmdesc.h"
#include "writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#define DIE(...) do { fprintf(stderr, __VA_ARGS__); exit(1); } while (0)
#define PAGE 4096

static char tmpdir[] = "/tmp/cpr-seeds-XXXXXX";
static CprRamBlock blocks[2];
static const QemuTransportVm qvm = {
    .ram = blocks, .nr_ram = 2, .machine = "pc-q35-10.0", .cpu = "qemu64",
    .ram_block_size = sizeof(CprRamBlock),
};
static const CprVm vm = { &qvm, NULL, 0 };
static const CprHost host = { "10.0.13-seed", NULL, NULL };

static char *img(const char *name)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

/* 16 pages of a file and 3 pages and a bit of anonymous memory. */
static void make_vm(void)
{
    int fd = open(img("vm.ram"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    uint8_t *file, *anon;

    if (fd < 0 || ftruncate(fd, 16 * PAGE) < 0) {
        DIE("cannot create the RAM file\n");
    }
    file = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (file == MAP_FAILED || anon == MAP_FAILED) {
        DIE("cannot map the RAM\n");
    }
    for (int i = 0; i < 16 * PAGE; i++) {
        file[i] = (uint8_t)(i / PAGE * 3 + i);
    }
    memset(anon, 0x5a, 4 * PAGE);
    blocks[0] = (CprRamBlock){ "pc.ram", file, 16 * PAGE, fd, 0,
                               CPR_RAM_SHARED };
    blocks[1] = (CprRamBlock){ "/objects/mem1", anon, 3 * PAGE + 100, -1, 0,
                               CPR_RAM_SHARED | CPR_RAM_PREALLOC };
}

static void save(const char *path, size_t len, int invalidate)
{
    char *err = NULL;
    CprWriter *w = cpr_writer_open_vm(path, &host, &vm, &err);
    uint8_t buf[1024];

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 7 + len);
    }
    if (!w || (invalidate ? cpr_writer_invalidate(w, &err) :
               len > sizeof(buf) || cpr_writer_append(w, buf, len, &err) ||
               cpr_writer_commit_vm(w, &vm, &err))) {
        DIE("%s\n", err ? err : "bad length");
    }
    cpr_writer_close(w);
}

static void write_out(const char *outdir, const char *name,
                      const uint8_t *buf, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        DIE("%s: cannot write\n", path);
    }
}

/* The record of @image's newest generation, from the compact copy. */
static int newest(const uint8_t *out, CprRecord *rec)
{
    int best = -1;

    for (int i = 0; i < 2; i++) {
        CprRecord r;

        if (cpr_record_decode(out + (i ? FUZZ_REC1_AT : FUZZ_REC0_AT),
                              CPR_REC_SIZE, &r) == CPR_DECODE_OK &&
            (best < 0 || r.generation > rec->generation)) {
            *rec = r;
            best = i;
        }
    }
    return best;
}

/*
 * @image in the compact layout after @skip zero bytes, keeping @payload
 * bytes of the area; returns the buffer, *@len its length.  With @v1,
 * the newest record is rewritten as a version-1 record (the previous
 * release's: no VM description).  The VM description of the newest
 * record, if inside the kept bytes, goes to @descdir/@name (NULL: not).
 */
static uint8_t *compact(const char *image, size_t payload, uint8_t flags,
                        int v1, size_t skip, const char *descdir,
                        const char *name, size_t *len)
{
    uint8_t *buf = calloc(1, skip + FUZZ_PAYLOAD_AT + payload);
    uint8_t *out = buf + skip;
    int fd = open(image, O_RDONLY);
    CprRecord rec;
    int slot;

    if (!buf || fd < 0 ||
        pread(fd, out + FUZZ_SB_AT, CPR_SB_SIZE, CPR_SB_OFFSET) < 0 ||
        pread(fd, out + FUZZ_REC0_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(0)) < 0 ||
        pread(fd, out + FUZZ_REC1_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(1)) < 0 ||
        pread(fd, out + FUZZ_PAYLOAD_AT, payload, CPR_PAYLOAD_AREA) < 0) {
        DIE("%s: cannot read\n", image);
    }
    close(fd);
    out[0] = flags;
    slot = newest(out, &rec);
    if (slot >= 0 && rec.payload_off == CPR_PAYLOAD_AREA &&
        rec.payload_len <= payload) {
        const uint8_t *p = out + FUZZ_PAYLOAD_AT;

        if (descdir && rec.stream_len < rec.payload_len) {
            write_out(descdir, name, p + rec.stream_len,
                      rec.payload_len - rec.stream_len);
        }
        if (v1) {
            rec.version = 1;
            rec.payload_len = rec.stream_len;
            rec.payload_xxh3 = XXH3_64bits(p, rec.stream_len);
            cpr_record_encode(&rec, out + (slot ? FUZZ_REC1_AT :
                                           FUZZ_REC0_AT));
        }
    }
    *len = skip + FUZZ_PAYLOAD_AT + payload;
    return buf;
}

/* Convert @image into OUTDIR/@name (see compact()). */
static void emit(const char *outdir, const char *descdir, const char *name,
                 const char *image, size_t payload, uint8_t flags, int v1)
{
    size_t len;
    uint8_t *out = compact(image, payload, flags, v1, 0, descdir, name,
                           &len);

    write_out(outdir, name, out, len);
    free(out);
}

/* Bytes of the payload at 2 MiB of the newest record of @image; 0
 * without a record. */
static size_t payload_of(const char *image)
{
    uint8_t out[FUZZ_PAYLOAD_AT];
    int fd = open(image, O_RDONLY);
    CprRecord rec;

    if (fd < 0 ||
        pread(fd, out + FUZZ_REC0_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(0)) < 0 ||
        pread(fd, out + FUZZ_REC1_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(1)) < 0) {
        DIE("%s: cannot read\n", image);
    }
    close(fd);
    return newest(out, &rec) < 0 ? 0 : (size_t)rec.payload_len;
}

/* A description of an empty VM, and one of many small blocks. */
static void extra_descs(const char *descdir)
{
    CprVmdesc d = {
        .version = CPR_VMDESC_VERSION, .seed = 1, .qemu_version = "10.0",
        .kernel_release = "6.18", .machine = "", .cpu = "",
        .image_media = CPR_MEDIA_VOLATILE, .image_media_detail = "tmpfs",
    };
    CprVmdescBlock k[8];
    uint8_t *buf;
    size_t len;

    buf = cpr_vmdesc_encode(&d, &len);
    write_out(descdir, "empty-vm", buf, len);
    free(buf);
    memset(k, 0, sizeof(k));
    for (int i = 0; i < 8; i++) {
        char *name = malloc(8);

        snprintf(name, 8, "b%d", i);
        k[i].name = name;
        k[i].size = (uint64_t)i * PAGE + (i & 1);
        k[i].media = 1 + i % 3;
        k[i].media_detail = (char *)"x";
        k[i].nr_samples = cpr_vmdesc_nr_samples(k[i].size);
        for (uint32_t j = 0; j < k[i].nr_samples; j++) {
            k[i].samples[j] = (CprVmdescSample){ j, j * 31 };
        }
        if (i & 2) {
            k[i].has_file = true;
            k[i].file.path = (char *)"/mnt/pmem/f";
            k[i].file.has_birth = i & 4;
        }
    }
    d.argv = (char *)"qemu\0-m\0" "1G\0";
    d.argv_len = 11;
    d.blocks = k;
    d.nr_blocks = 8;
    buf = cpr_vmdesc_encode(&d, &len);
    write_out(descdir, "eight-blocks", buf, len);
    free(buf);
    for (int i = 0; i < 8; i++) {
        free(k[i].name);
    }
}

/* A writer seed (fuzz-writer.h): a save in @mode into @image. */
typedef struct WriterSeed {
    const char *name;
    const char *image;          /* NULL: none (the mode says what file) */
    size_t payload;             /* area bytes kept; 0: the newest payload */
    uint8_t flags;              /* fuzz-image.h */
    uint8_t mode;
    uint64_t file_size;         /* 0: as laid out */
    uint16_t stream, gap;
    uint8_t chunk, rec[2], read, split;
    unsigned how;               /* SEED_* */
    int v1;                     /* the newest record as version 1 */
} WriterSeed;

enum {
    /* Both records damaged: no live payload, and the new one goes where
     * the old one's bytes still are (gaps must be zeroed). */
    SEED_BREAK_RECS = 1,
    /* The payload moved FW_LOW_OFF bytes up, and the newest record with
     * it (FW_PICK_LOW): a short bound below it. */
    SEED_LOW = 2,
    /* The payload area after the newest payload: not zeros. */
    SEED_STALE = 4,
};

#define ALL_FLAGS (FUZZ_RESIGN_SB | FUZZ_RESIGN_REC | FUZZ_SET_XXH3)
#define VM(which) ((which) << FW_VM_SHIFT)

static const WriterSeed writer_seeds[] = {
    { "new-file", .mode = FW_FILE_MISSING, .stream = 300, .chunk = 3 },
    { "new-file-ram",
      .mode = FW_FILE_MISSING | VM(FW_VM_BOTH) | FW_GUEST_WRITES,
      .stream = 5000, .chunk = 40, .read = 3 },
    { "empty-file", .mode = FW_FILE_EMPTY },
    { "uncommitted", "uncommitted", .stream = 1000, .chunk = 20 },
    { "one-generation", "one", .stream = 5000, .chunk = 40 },
    { "one-generation-ram-anon", "one", .mode = VM(FW_VM_ANON),
      .stream = 2000, .chunk = 7, .split = 128 },
    /* Two whole pages in chunks of less than one. */
    { "one-generation-ram-file", "one",
      .mode = VM(FW_VM_FILE) | FW_GUEST_WRITES, .stream = 8192,
      .chunk = 110, .read = 63 },
    { "one-generation-pwrite", "one", .flags = ALL_FLAGS,
      .mode = FW_PWRITE, .stream = 3001, .chunk = 7 },
    { "one-generation-pwrite-gap", "one",
      .mode = FW_PWRITE | VM(FW_VM_BOTH),
      .stream = 9000, .gap = 10000, .chunk = 30, .read = 33,
      .split = 100 },
    { "one-generation-abort", "one", .mode = FW_ABORT, .stream = 700,
      .chunk = 1 },
    /* Cut inside the live payload: it protects nothing. */
    { "one-generation-truncated", "one",
      .file_size = CPR_PAYLOAD_AREA + 100, .stream = 200, .chunk = 2 },
    { "one-generation-odd-size", "one", .file_size = (8u << 20) + 123,
      .stream = 9000, .chunk = 255 },
    { "one-generation-v1", "one", .stream = 2500, .chunk = 13, .v1 = 1 },
    { "empty-stream", "empty", .stream = 600, .chunk = 5 },
    { "two-generations", "two", 3000, .mode = FW_PWRITE, .stream = 4000,
      .gap = 100, .chunk = 11 },
    { "three-generations", "three", .flags = FUZZ_SET_XXH3, .stream = 12000,
      .chunk = 100 },
    { "invalidated", "invalidated", 3000, .flags = FUZZ_RESIGN_REC,
      .stream = 64 },
    /* Sparse: most of the file is a hole the image never wrote. */
    { "sparse-100m", "uncommitted", .file_size = 100u << 20, .stream = 100,
      .chunk = 9 },
    { "sparse-64g", "one", .file_size = 64ull << 30, .stream = 500,
      .chunk = 9 },
    { "sparse-64g-uncommitted", "uncommitted", .file_size = 64ull << 30,
      .stream = 500, .chunk = 9 },
    /* Generation 1 (slot 1) claiming a payload far away, or of a length
     * that wraps the placement arithmetic (fuzz-writer.c pick()). */
    { "one-generation-far", "one", .stream = 2000, .chunk = 30,
      .rec = { 0, 0x37 } },
    { "one-generation-huge", "one", .stream = 2000, .chunk = 30,
      .rec = { 0, 0xd2 } },
    /* ... and [2 MiB, 64 GiB) of a sparse file: all holes (073a081's
     * reader faulted them in until tmpfs was full: SIGBUS). */
    { "sparse-64g-hole-payload", "one", .file_size = 64ull << 30,
      .stream = 5000, .chunk = 30, .rec = { 0, 0x62 } },
    { "stale-payload-gap", "one", .mode = FW_PWRITE, .stream = 6000,
      .gap = 9000, .chunk = 50, .how = SEED_BREAK_RECS },
    /* ... 12 KiB of it: whole pages of the gap, and the part of the
     * append frontier no append wrote, must be zeroed at commit. */
    { "stale-pages-gap", "one", 12288, .mode = FW_PWRITE, .stream = 10000,
      .gap = 9000, .chunk = 20, .how = SEED_BREAK_RECS | SEED_STALE },
    /* Above the live payload, where an older save's bytes are: gaps
     * and the rest of pages written in part must read as zeros. */
    { "stale-file", "one", .mode = FW_PWRITE, .file_size = 12u << 20,
      .stream = 6000, .gap = 300, .chunk = 40,
      .read = FW_LO_FIRST | FW_STALE | 5 },
    /* Placed below the live payload, then relocated above it. */
    { "relocate", "one", .stream = 9000, .chunk = 60,
      .rec = { 0, FW_PICK_LOW }, .how = SEED_LOW },
    { "relocate-pwrite", "one", .mode = FW_PWRITE | VM(FW_VM_FILE),
      .stream = 7000, .gap = 3000, .chunk = 5, .rec = { 0, FW_PICK_LOW },
      .split = 255, .how = SEED_LOW },
    /* ... after a page was written in part (its rest zeroed where it
     * was), over an older save's bytes, with a gap in that page. */
    { "relocate-stale-gap", "one", .mode = FW_PWRITE,
      .file_size = 12u << 20, .stream = 6000, .gap = 300, .chunk = 40,
      .rec = { 0, FW_PICK_LOW }, .read = FW_LO_FIRST | FW_STALE,
      .how = SEED_LOW },
};

static void emit_writer(const char *outdir, const WriterSeed *w)
{
    size_t len = FW_IMAGE_AT, payload = w->payload;
    uint8_t *out, *c;

    if (w->image && !payload) {
        payload = payload_of(img(w->image));
    }
    if (w->how & SEED_LOW) {
        payload += FW_LOW_OFF;
    }
    out = w->image ? compact(img(w->image), payload, w->flags, w->v1,
                             FW_IMAGE_AT, NULL, NULL, &len) :
          calloc(1, FW_IMAGE_AT);
    if (!out) {
        DIE("out of memory\n");
    }
    c = out + FW_IMAGE_AT;
    if (w->how & SEED_BREAK_RECS) {
        c[FUZZ_REC0_AT + 20] ^= 1;
        c[FUZZ_REC1_AT + 20] ^= 1;
    }
    if (w->how & SEED_STALE) {
        size_t from = payload_of(img(w->image));

        for (size_t i = from; i < payload; i++) {
            c[FUZZ_PAYLOAD_AT + i] = (uint8_t)(0xa5 ^ i);
        }
    }
    if (w->how & SEED_LOW) {
        uint8_t *area = c + FUZZ_PAYLOAD_AT;

        memmove(area + FW_LOW_OFF, area, payload - FW_LOW_OFF);
        memset(area, 0, FW_LOW_OFF);
    }
    out[FW_MODE_AT] = w->mode | (w->file_size ? FW_SIZE : 0);
    for (int i = 0; i < 5; i++) {
        out[FW_SIZE_AT + i] = (uint8_t)(w->file_size >> (8 * i));
    }
    out[FW_LEN_AT] = (uint8_t)w->stream;
    out[FW_LEN_AT + 1] = (uint8_t)(w->stream >> 8);
    out[FW_SEED_AT] = (uint8_t)(w->stream * 7 + w->mode);
    out[FW_CHUNK_AT] = w->chunk;
    out[FW_REC_AT] = w->rec[0];
    out[FW_REC_AT + 1] = w->rec[1];
    out[FW_GAP_AT] = (uint8_t)w->gap;
    out[FW_GAP_AT + 1] = (uint8_t)(w->gap >> 8);
    out[FW_READ_AT] = w->read;
    out[FW_SPLIT_AT] = w->split;
    write_out(outdir, w->name, out, len);
    free(out);
}

int main(int argc, char **argv)
{
    const char *out = argc == 3 || argc == 4 ? argv[1] : NULL;
    const char *desc = out ? argv[2] : NULL;
    char *err = NULL;
    CprWriter *w;

    if (!out || !mkdtemp(tmpdir)) {
        DIE("usage: fuzz-make-seeds IMAGE-OUTDIR VMDESC-OUTDIR "
            "[WRITER-OUTDIR]\n");
    }
    make_vm();
    /* Superblock only: a file nobody committed to. */
    w = cpr_writer_open_vm(img("uncommitted"),
                           &(CprHost){ NULL, NULL, NULL },
                           NULL, &err);
    if (!w) {
        DIE("%s\n", err);
    }
    cpr_writer_close(w);
    emit(out, NULL, "uncommitted", img("uncommitted"), 0, 0, 0);
    save(img("one"), 300, 0);
    emit(out, desc, "one-generation", img("one"), payload_of(img("one")), 0,
         0);
    emit(out, NULL, "one-generation-resign", img("one"),
         payload_of(img("one")),
         FUZZ_RESIGN_SB | FUZZ_RESIGN_REC | FUZZ_SET_XXH3, 0);
    /* The previous release's record format: loads, nothing recorded. */
    emit(out, NULL, "one-generation-v1", img("one"), payload_of(img("one")),
         0, 1);
    save(img("empty"), 0, 0);
    emit(out, desc, "empty-stream", img("empty"), payload_of(img("empty")),
         0, 0);
    /* Generation 2 sits at 4 MiB: outside the seed, so refused. */
    save(img("two"), 200, 0);
    save(img("two"), 400, 0);
    emit(out, NULL, "two-generations", img("two"), 3000, 0, 0);
    /* Generation 3 back at 2 MiB, below generation 2. */
    save(img("three"), 200, 0);
    save(img("three"), 400, 0);
    save(img("three"), 100, 0);
    emit(out, desc, "three-generations", img("three"),
         payload_of(img("three")), FUZZ_SET_XXH3, 0);
    save(img("invalidated"), 300, 0);
    save(img("invalidated"), 0, 1);
    emit(out, NULL, "invalidated", img("invalidated"), 3000, FUZZ_RESIGN_REC,
         0);
    extra_descs(desc);
    if (argc == 4) {
        for (size_t i = 0; i < sizeof(writer_seeds) / sizeof(*writer_seeds);
             i++) {
            emit_writer(argv[3], &writer_seeds[i]);
        }
    }
    for (const char *n = "uncommitted one empty two three invalidated vm.ram";
         *n;) {
        size_t len = strcspn(n, " ");
        char name[32];

        snprintf(name, sizeof(name), "%.*s", (int)len, n);
        unlink(img(name));
        n += len + (n[len] == ' ');
    }
    rmdir(tmpdir);
    return 0;
}
