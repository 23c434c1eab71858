/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Write the seed corpus: real images made by the writer, in the compact
 * layout of fuzz-image.h, cut after the payload area bytes that matter.
 * Usage: fuzz-make-seeds OUTDIR
 */
#include "fuzz-image.h"
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

/* Convert @image into OUTDIR/@name, keeping @payload bytes of the area. */
static void emit(const char *outdir, const char *name, const char *image,
                 size_t payload, uint8_t flags)
{
    uint8_t *out = calloc(1, FUZZ_PAYLOAD_AT + payload);
    int fd = open(image, O_RDONLY);
    char path[4096];
    FILE *f;

    if (!out || fd < 0 ||
        pread(fd, out + FUZZ_SB_AT, CPR_SB_SIZE, CPR_SB_OFFSET) < 0 ||
        pread(fd, out + FUZZ_REC0_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(0)) < 0 ||
        pread(fd, out + FUZZ_REC1_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(1)) < 0 ||
        pread(fd, out + FUZZ_PAYLOAD_AT, payload, CPR_PAYLOAD_AREA) < 0) {
        DIE("%s: cannot read\n", image);
    }
    close(fd);
    out[0] = flags;
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(out, 1, FUZZ_PAYLOAD_AT + payload, f) !=
              FUZZ_PAYLOAD_AT + payload || fclose(f) != 0) {
        DIE("%s: cannot write\n", path);
    }
    free(out);
}

static char *img(const char *name)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

int main(int argc, char **argv)
{
    const char *out = argc == 2 ? argv[1] : NULL;
    char *err = NULL;
    CprWriter *w;

    if (!out || !mkdtemp(tmpdir)) {
        DIE("usage: fuzz-make-seeds OUTDIR\n");
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
