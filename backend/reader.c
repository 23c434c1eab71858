/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "reader.h"
#include "errmsg.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct CprReader {
    char *path;
    int fd;                 /* holds the shared lock */
    const uint8_t *map;
    size_t map_len;
    CprRecord rec;
    uint64_t pos;
};

static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return "is a directory";
    case S_IFIFO: return "is a FIFO";
    case S_IFCHR: return "is a character device";
    case S_IFBLK: return "is a block device";
    case S_IFSOCK: return "is a socket";
    default: return "is not a regular file";
    }
}

/*
 * Map the whole file read-only and take a shared lock on it: a save
 * (exclusive lock) could otherwise reuse the payload being read once two
 * newer generations exist.
 */
static int map_file(CprReader *r, const char *path, char **errp)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    void *map;

    if (fd < 0) {
        cpr_error_errno(errp, path, errno, "cannot open");
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        cpr_error_errno(errp, path, errno, "cannot stat");
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        cpr_error(errp, path, "%s, not a pmem CPR image", file_kind(st.st_mode));
        goto fail;
    }
    if ((uint64_t)st.st_size < CPR_HEADER_SIZE) {
        cpr_error(errp, path, "too short (%lld bytes) to be a pmem CPR image",
                  (long long)st.st_size);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        cpr_error(errp, path, "too large to map");
        goto fail;
    }
    if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            cpr_error(errp, path, "a save to this file is in progress");
        } else {
            cpr_error_errno(errp, path, errno, "cannot lock");
        }
        goto fail;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        cpr_error_errno(errp, path, errno, "cannot map");
        goto fail;
    }
    r->fd = fd;
    r->map = map;
    r->map_len = (size_t)st.st_size;
    return 0;
fail:
    close(fd);
    return -1;
}

/* Pick the record to load and refuse anything unsafe to load. */
static int choose_record(CprReader *r, const char *path, char **errp)
{
    CprSuperblock sb;
    CprSlots s;
    const CprRecord *rec;

    switch (cpr_sb_decode(r->map, CPR_BLOCK_SIZE, &sb)) {
    case CPR_DECODE_OK:
        break;
    case CPR_DECODE_TOO_NEW:
        cpr_error(errp, path, "image format version %u is newer than this "
                  "transport (%u)", sb.version, CPR_FORMAT_VERSION);
        return -1;
    default:
        cpr_error(errp, path, "not a pmem CPR image (no valid superblock)");
        return -1;
    }
    cpr_slots_decode(r->map, &s);
    if (s.newest < 0) {
        bool damaged = s.state[0] == CPR_DECODE_BAD ||
                       s.state[1] == CPR_DECODE_BAD;

        cpr_error(errp, path, "no committed image%s",
                  damaged ? " (all commit records are damaged)" : "");
        return -1;
    }
    rec = &s.rec[s.newest];
    if (s.state[s.newest] == CPR_DECODE_TOO_NEW) {
        cpr_error(errp, path, "image format version %u is newer than this "
                  "transport (%u)", rec->version, CPR_FORMAT_VERSION);
        return -1;
    }
    if (rec->flags & CPR_REC_FLAG_INVALIDATED) {
        cpr_error(errp, path, "image (generation %llu) was invalidated",
                  (unsigned long long)rec->generation);
        return -1;
    }
    if (!cpr_record_fits(rec, r->map_len)) {
        cpr_error(errp, path, "image (generation %llu) lies outside the file "
                  "(truncated?)", (unsigned long long)rec->generation);
        return -1;
    }
    r->rec = *rec;
    return 0;
}

CprReader *cpr_reader_open(const char *path, char **errp)
{
    CprReader *r = calloc(1, sizeof(*r));

    if (!r) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    r->fd = -1;
    if (!(r->path = strdup(path))) {
        cpr_error(errp, path, "out of memory");
        goto fail;
    }
    if (map_file(r, path, errp) < 0 || choose_record(r, path, errp) < 0) {
        goto fail;
    }
#ifdef MADV_POPULATE_READ
    /* One call instead of a fault per page; only speed depends on it. */
    (void)madvise((void *)(r->map + (r->rec.payload_off & ~(uint64_t)4095)),
                  r->rec.payload_len + (r->rec.payload_off & 4095),
                  MADV_POPULATE_READ);
#endif
    /*
     * No fallback to the older generation on a mismatch: its device state
     * would not match the guest RAM the newer save left behind.
     */
    if (XXH3_64bits(r->map + r->rec.payload_off, r->rec.payload_len) !=
        r->rec.payload_xxh3) {
        cpr_error(errp, path, "image (generation %llu) is corrupt: payload "
                  "checksum mismatch", (unsigned long long)r->rec.generation);
        goto fail;
    }
    return r;
fail:
    cpr_reader_close(r);
    return NULL;
}

size_t cpr_reader_pread(const CprReader *r, uint64_t off, void *buf,
                        size_t len)
{
    uint64_t total = r->rec.payload_len;

    if (off >= total) {
        return 0;
    }
    if (len > total - off) {
        len = (size_t)(total - off);
    }
    memcpy(buf, r->map + r->rec.payload_off + off, len);
    return len;
}

size_t cpr_reader_read(CprReader *r, void *buf, size_t len)
{
    size_t n = cpr_reader_pread(r, r->pos, buf, len);

    r->pos += n;
    return n;
}

const CprRecord *cpr_reader_record(const CprReader *r)
{
    return &r->rec;
}

void cpr_reader_close(CprReader *r)
{
    if (!r) {
        return;
    }
    if (r->map) {
        munmap((void *)r->map, r->map_len);
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r->path);
    free(r);
}

int cpr_reader_inspect(const char *path, CprImageHeader *h, char **errp)
{
    CprReader r = { .fd = -1 };

    memset(h, 0, sizeof(*h));
    if (map_file(&r, path, errp) < 0) {
        return -1;
    }
    h->file_size = r.map_len;
    h->sb_state = cpr_sb_decode(r.map, CPR_BLOCK_SIZE, &h->sb);
    cpr_slots_decode(r.map, &h->slots);
    munmap((void *)r.map, r.map_len);
    close(r.fd);
    return 0;
}

const char *cpr_reader_path(const CprReader *r)
{
    return r->path;
}
