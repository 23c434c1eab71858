/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over the image decoder and the reader (see
 * fuzz-image.h for the input layout).  Two paths per input: the pure
 * decoders on the raw bytes, and the whole cpr_reader_open() on a memfd
 * holding the expanded image, checking what a successful open promises.
 */
#include "fuzz-image.h"
#include "binding.h"
#include "format.h"
#include "reader.h"
#include "vmdesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

unsigned long fuzz_loaded;

/* Decoders on arbitrary bytes and lengths: must stay inside the buffer. */
static void fuzz_decoders(const uint8_t *data, size_t size)
{
    CprSuperblock sb;
    CprRecord rec;

    cpr_sb_decode(data, size, &sb);
    if (cpr_record_decode(data, size, &rec) == CPR_DECODE_OK) {
        cpr_record_fits(&rec, size);
    }
    if (size >= CPR_HEADER_SIZE) {
        CprSlots s;

        cpr_slots_decode(data, &s);
        CHECK(s.newest >= -1 && s.newest < (int)CPR_NR_SLOTS);
    }
}

static int image_fd(void)
{
    static int fd = -1;

    if (fd < 0) {
        fd = memfd_create("cpr-fuzz-image", MFD_CLOEXEC);
        CHECK(fd >= 0);
    }
    return fd;
}

/*
 * The checks in_open makes next, on whatever description loaded, against
 * a VM without RAM blocks: every recorded block is "missing", and the
 * recorded argument list is compared with ours.  Must not crash; refuses
 * with a message unless nothing was recorded that differs.
 */
static void fuzz_binding(const char *path, CprReader *r)
{
    static const CprHost host = { "10.0.13-fuzz", NULL, NULL };
    static const QemuTransportVm qvm = { .machine = "pc-q35-10.0",
                                         .cpu = "qemu64" };
    static const CprVm vm = { &qvm, NULL, 0 };
    const CprVmdesc *d = cpr_reader_vmdesc(r);
    char *err = NULL;
    int ret = cpr_binding_verify(path, cpr_reader_record(r), d, &host, &vm,
                                 &err);

    CHECK((ret == 0) == (err == NULL));
    CHECK(ret == 0 || d);
    free(err);
}

/* The reader on the expanded file; a successful open must be safe. */
static void fuzz_reader(const uint8_t *data, size_t size)
{
    static uint8_t header[CPR_HEADER_SIZE];
    uint64_t file_size = fuzz_expand(data, size, header);
    size_t plen = size > FUZZ_PAYLOAD_AT ? size - FUZZ_PAYLOAD_AT : 0;
    int fd = image_fd();
    char path[64], *err = NULL;
    CprReader *r;

    fuzz_decoders(header, CPR_HEADER_SIZE);
    CHECK(ftruncate(fd, 0) == 0 && ftruncate(fd, (off_t)file_size) == 0);
    CHECK(pwrite(fd, header, CPR_HEADER_SIZE, 0) == CPR_HEADER_SIZE);
    if (plen) {
        CHECK(pwrite(fd, data + FUZZ_PAYLOAD_AT, plen, CPR_PAYLOAD_AREA) ==
              (ssize_t)plen);
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    r = cpr_reader_open(path, &err);
    if (!r) {
        CHECK(err && strncmp(err, path, strlen(path)) == 0);
        free(err);
        return;
    }
    {
        const CprRecord *rec = cpr_reader_record(r);
        uint8_t *buf = malloc(rec->stream_len + 1);
        size_t n = 0;
        ssize_t got;

        CHECK(!(rec->flags & CPR_REC_FLAG_INVALIDATED));
        CHECK(cpr_record_fits(rec, file_size));
        CHECK(rec->stream_len <= rec->payload_len);
        /* A description exactly for the records that carry one. */
        CHECK((cpr_reader_vmdesc(r) != NULL) == (rec->version >= 2));
        CHECK(buf);
        while ((got = cpr_reader_read(r, buf + n, 4093, &err)) > 0) {
            n += (size_t)got;
            CHECK(n <= rec->stream_len);
        }
        CHECK(got == 0 && !err);
        CHECK(n == rec->stream_len);
        /* What was served is the stream in the file, nothing after it. */
        CHECK(n == 0 || memcmp(buf, data + FUZZ_PAYLOAD_AT +
                               (rec->payload_off - CPR_PAYLOAD_AREA), n) == 0);
        if (rec->version == 1) {
            CHECK(XXH3_64bits(buf, n) == rec->payload_xxh3);
        }
        CHECK(cpr_reader_pread(r, n, buf, 1, &err) == 0);
        free(buf);
    }
    fuzz_binding(path, r);
    cpr_reader_close(r);
    fuzz_loaded++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decoders(data, size);
    fuzz_reader(data, size);
    return 0;
}
