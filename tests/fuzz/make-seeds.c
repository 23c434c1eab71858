/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write the seed corpus: real images made by the writer, in the compact
 * layout of fuzz-image.h, cut after the payload area bytes that matter.
 * With a second directory, also the seeds of the writer target
 * (fuzz-writer.h): saves into those images.
 * Usage: fuzz-make-seeds OUTDIR [WRITER_OUTDIR]
 */
#include "fuzz-image.h"
#include "fuzz-writer.h"
#include "format.h"
#include "writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIE(...) do { fprintf(stderr, __VA_ARGS__); exit(1); } while (0)

static char tmpdir[] = "/tmp/cpr-seeds-XXXXXX";

static void save(const char *path, size_t len, int invalidate)
{
    char *err = NULL;
    CprWriter *w = cpr_writer_open(path, "10.0.13-seed", &err);
    uint8_t buf[1024];

    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 7 + len);
    }
    if (!w || (invalidate ? cpr_writer_invalidate(w, &err) :
               len > sizeof(buf) || cpr_writer_append(w, buf, len, &err) ||
               cpr_writer_commit(w, &err))) {
        DIE("%s\n", err ? err : "bad length");
    }
    cpr_writer_close(w);
}

static char *img(const char *name)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *outdir, const char *name,
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

/* @image in the compact layout, keeping @payload bytes of the area, after
 * @skip zero bytes; returns the buffer (@skip + its length in *len). */
static uint8_t *compact(const char *image, size_t payload, uint8_t flags,
                        size_t skip, size_t *len)
{
    uint8_t *out = calloc(1, skip + FUZZ_PAYLOAD_AT + payload), *c;
    int fd = open(image, O_RDONLY);

    c = out + skip;
    if (!out || fd < 0 ||
        pread(fd, c + FUZZ_SB_AT, CPR_SB_SIZE, CPR_SB_OFFSET) < 0 ||
        pread(fd, c + FUZZ_REC0_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(0)) < 0 ||
        pread(fd, c + FUZZ_REC1_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(1)) < 0 ||
        pread(fd, c + FUZZ_PAYLOAD_AT, payload, CPR_PAYLOAD_AREA) < 0) {
        DIE("%s: cannot read\n", image);
    }
    close(fd);
    c[0] = flags;
    *len = skip + FUZZ_PAYLOAD_AT + payload;
    return out;
}

/* Convert @image into OUTDIR/@name, keeping @payload bytes of the area. */
static void emit(const char *outdir, const char *name, const char *image,
                 size_t payload, uint8_t flags)
{
    size_t len;
    uint8_t *out = compact(image, payload, flags, 0, &len);

    write_file(outdir, name, out, len);
    free(out);
}

/* A writer seed (fuzz-writer.h): a save of @stream bytes in @mode, into
 * @image (NULL: none) whose file is @file_size bytes (0: as laid out). */
static void emit_writer_recs(const char *outdir, const char *name,
                             const char *image, size_t payload,
                             uint8_t flags, uint8_t mode, uint64_t file_size,
                             uint16_t stream, uint8_t chunk, uint8_t rec0,
                             uint8_t rec1)
{
    size_t len = FW_IMAGE_AT;
    uint8_t *out = image ? compact(image, payload, flags, FW_IMAGE_AT, &len) :
                   calloc(1, FW_IMAGE_AT);

    if (!out) {
        DIE("out of memory\n");
    }
    out[FW_MODE_AT] = mode | (file_size ? FW_SIZE : 0);
    for (int i = 0; i < 5; i++) {
        out[FW_SIZE_AT + i] = (uint8_t)(file_size >> (8 * i));
    }
    out[FW_LEN_AT] = (uint8_t)stream;
    out[FW_LEN_AT + 1] = (uint8_t)(stream >> 8);
    out[FW_SEED_AT] = (uint8_t)(stream * 7 + mode);
    out[FW_CHUNK_AT] = chunk;
    out[FW_REC_AT] = rec0;
    out[FW_REC_AT + 1] = rec1;
    write_file(outdir, name, out, len);
    free(out);
}

static void emit_writer(const char *outdir, const char *name,
                        const char *image, size_t payload, uint8_t flags,
                        uint8_t mode, uint64_t file_size, uint16_t stream,
                        uint8_t chunk)
{
    emit_writer_recs(outdir, name, image, payload, flags, mode, file_size,
                     stream, chunk, 0, 0);
}

/* Saves into the images that main() made. */
static void writer_seeds(const char *out)
{
    const uint8_t all = FUZZ_RESIGN_SB | FUZZ_RESIGN_REC | FUZZ_SET_XXH3;

    emit_writer(out, "new-file", NULL, 0, 0, FW_FILE_MISSING, 0, 300, 3);
    emit_writer(out, "empty-file", NULL, 0, 0, FW_FILE_EMPTY, 0, 0, 0);
    emit_writer(out, "uncommitted", img("uncommitted"), 0, 0, 0, 0, 1000,
                20);
    emit_writer(out, "one-generation", img("one"), 300, 0, 0, 0, 5000, 40);
    emit_writer(out, "one-generation-pwrite", img("one"), 300, all,
                FW_PWRITE, 0, 3001, 7);
    emit_writer(out, "one-generation-abort", img("one"), 300, 0, FW_ABORT,
                0, 700, 1);
    /* Cut inside the live payload: it protects nothing. */
    emit_writer(out, "one-generation-truncated", img("one"), 300, 0, 0,
                CPR_PAYLOAD_AREA + 100, 200, 2);
    emit_writer(out, "one-generation-odd-size", img("one"), 300, 0, 0,
                (8u << 20) + 123, 9000, 255);
    emit_writer(out, "two-generations", img("two"), 200, 0, FW_PWRITE, 0,
                4000, 11);
    emit_writer(out, "three-generations", img("three"), 100, FUZZ_SET_XXH3,
                0, 0, 12000, 100);
    emit_writer(out, "invalidated", img("invalidated"), 300, FUZZ_RESIGN_REC,
                0, 0, 64, 0);
    /* Sparse: most of the file is a hole the image never wrote. */
    emit_writer(out, "sparse-100m", img("uncommitted"), 0, 0, 0,
                100u << 20, 100, 9);
    emit_writer(out, "sparse-64g", img("one"), 300, 0, 0, 64ull << 30,
                500, 9);
    emit_writer(out, "sparse-64g-uncommitted", img("uncommitted"), 0, 0, 0,
                64ull << 30, 500, 9);
    /* Generation 1 (slot 1) claiming a payload far away, or of a length
     * that wraps the placement arithmetic (fuzz-writer.c pick()). */
    emit_writer_recs(out, "one-generation-far", img("one"), 300, 0, 0, 0,
                     2000, 30, 0, 0x37);
    emit_writer_recs(out, "one-generation-huge", img("one"), 300, 0, 0, 0,
                     2000, 30, 0, 0xd2);
    /* ... and [2 MiB, 64 GiB) of a sparse file: all holes (073a081's
     * reader faulted them in until tmpfs was full: SIGBUS). */
    emit_writer_recs(out, "sparse-64g-hole-payload", img("one"), 300, 0, 0,
                     64ull << 30, 5000, 30, 0, 0x62);
}

int main(int argc, char **argv)
{
    const char *out = argc == 2 || argc == 3 ? argv[1] : NULL;
    char *err = NULL;
    CprWriter *w;

    if (!out || !mkdtemp(tmpdir)) {
        DIE("usage: fuzz-make-seeds OUTDIR [WRITER_OUTDIR]\n");
    }
    /* Superblock only: a file nobody committed to. */
    w = cpr_writer_open(img("uncommitted"), NULL, &err);
    if (!w) {
        DIE("%s\n", err);
    }
    cpr_writer_close(w);
    emit(out, "uncommitted", img("uncommitted"), 0, 0);
    save(img("one"), 300, 0);
    emit(out, "one-generation", img("one"), 300, 0);
    emit(out, "one-generation-resign", img("one"), 300,
         FUZZ_RESIGN_SB | FUZZ_RESIGN_REC | FUZZ_SET_XXH3);
    save(img("empty"), 0, 0);
    emit(out, "empty-stream", img("empty"), 0, 0);
    /* Generation 2 sits at 4 MiB: outside the seed, so refused. */
    save(img("two"), 200, 0);
    save(img("two"), 400, 0);
    emit(out, "two-generations", img("two"), 200, 0);
    /* Generation 3 back at 2 MiB, below generation 2. */
    save(img("three"), 200, 0);
    save(img("three"), 400, 0);
    save(img("three"), 100, 0);
    emit(out, "three-generations", img("three"), 100, FUZZ_SET_XXH3);
    save(img("invalidated"), 300, 0);
    save(img("invalidated"), 0, 1);
    emit(out, "invalidated", img("invalidated"), 300, FUZZ_RESIGN_REC);
    if (argc == 3) {
        writer_seeds(argv[2]);
    }
    for (const char *n = "uncommitted one empty two three invalidated"; *n;) {
        size_t len = strcspn(n, " ");
        char name[32];

        snprintf(name, sizeof(name), "%.*s", (int)len, n);
        unlink(img(name));
        n += len + (n[len] == ' ');
    }
    rmdir(tmpdir);
    return 0;
}
