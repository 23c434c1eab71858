/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A failed flush on a real file (issue 8, item 2): the msync path
 * (PMEM_IS_PMEM_FORCE=0, a file on a disk filesystem), with msync()
 * failing with EIO on the Nth call of a save.  This executable defines
 * msync(); libpmem's pmem_msync() calls it through the PLT, so the
 * definition here interposes it (checked: the calls are counted).
 *
 * Through the transport ABI, as QEMU drives it: commit generation 1;
 * save generation 2 with the payload's or the record's msync failing
 * (once, or from then on) -> out_commit returns -1 naming the file, and
 * in_open in the same boot loads generation 1 byte for byte; then the
 * same save without failures commits generation 2, which loads.
 *
 *   CPR_TEST_DIR   where the image goes (a disk filesystem, not tmpfs)
 */
#include "format.h"
#include "qemu/transport-plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned msync_calls;    /* since the counter was reset */
static unsigned msync_fail_at;  /* 0: never */
static bool msync_sticky;       /* ... and every call after it */
static unsigned msync_failed;

int msync(void *addr, size_t len, int flags)
{
    static int (*real)(void *, size_t, int);
    unsigned n = ++msync_calls;

    if (msync_fail_at && (n == msync_fail_at ||
                          (msync_sticky && n > msync_fail_at))) {
        msync_failed++;
        errno = EIO;
        return -1;
    }
    if (!real) {
        real = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");
        if (!real) {
            fprintf(stderr, "no msync after this one: %s\n", dlerror());
            abort();
        }
    }
    return real(addr, len, flags);
}

static const QemuTransportOps *ops;
static char path[4096];
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
    fprintf(stderr, "FAIL: %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* The VM being saved: its RAM travels in the stream (none left in place). */
static const QemuTransportVm *test_vm(void)
{
    static const QemuTransportVm vm = { NULL, 0, "pc-q35-10.0", "qemu64",
                                        sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };

    return &vm;
}

static void warn(const char *msg)
{
    printf("  warning: %s\n", msg);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);

    if (!buf) {
        abort();
    }
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    return buf;
}

/*
 * One save of @buf; msync call @fail_at of it (0: none) fails, and with
 * @sticky every later one too.  Returns what out_commit returned; *errp
 * gets its message.
 */
static int save(const uint8_t *buf, size_t len, unsigned fail_at,
                bool sticky, char **errp)
{
    struct iovec iov[2] = {
        { (void *)buf, len / 3 }, { (void *)(buf + len / 3), len - len / 3 },
    };
    char *err = NULL;
    QemuTransportOut *t = ops->out_open(path, test_vm(), &err);
    int ret;

    if (!t) {
        fprintf(stderr, "out_open: %s\n", err);
        exit(2);
    }
    if (ops->out_writev(t, iov, 2, &err) != (ssize_t)len) {
        fprintf(stderr, "out_writev: %s\n", err);
        exit(2);
    }
    msync_calls = msync_failed = 0;
    msync_fail_at = fail_at;
    msync_sticky = sticky;
    ret = ops->out_commit(t, test_vm(), errp);
    msync_fail_at = 0;
    if (ret < 0) {
        ops->out_abort(t);      /* what QEMU does with a failed save */
    }
    ops->out_close(t);
    return ret;
}

/* in_open in this boot: generation @gen, exactly @buf. */
static void check_loads(uint64_t gen, const uint8_t *buf, size_t len,
                        const char *what)
{
    char *err = NULL;
    QemuTransportIn *t = ops->in_open(path, test_vm(), &err);
    uint8_t *got = malloc(len + 4096);
    uint8_t hdr[CPR_HEADER_SIZE];
    size_t done = 0;
    ssize_t n;
    CprSlots s;
    int fd;

    if (!t || !got) {
        CHECK(0, "%s: in_open refused: %s", what, err);
        free(err);
        free(got);
        return;
    }
    do {
        struct iovec iov = { got + done, len + 4096 - done };

        n = ops->in_readv(t, &iov, 1, &err);
        done += n > 0 ? (size_t)n : 0;
    } while (n > 0 && done < len + 4096);
    CHECK(n >= 0 && done == len && memcmp(got, buf, len) == 0,
          "%s: in_open loaded %zu bytes, not the %zu of generation %llu",
          what, done, len, (unsigned long long)gen);
    ops->in_close(t);
    free(got);
    /* ... and the generation is the one expected. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0 && pread(fd, hdr, sizeof(hdr), 0) == sizeof(hdr),
          "%s: cannot read the header", what);
    if (fd >= 0) {
        close(fd);
    }
    cpr_slots_decode(hdr, &s);
    CHECK(s.newest >= 0 && s.rec[s.newest].generation == gen,
          "%s: newest generation is %llu, expected %llu", what,
          s.newest >= 0 ? (unsigned long long)s.rec[s.newest].generation :
          0ull, (unsigned long long)gen);
}

static void check_message(const char *err, const char *what)
{
    size_t plen = strlen(path);

    CHECK(err && !strncmp(err, path, plen) && !strncmp(err + plen, ": ", 2)
          && strstr(err, strerror(EIO)),
          "%s: message \"%s\" does not name the file and the error", what,
          err ? err : "(none)");
    printf("  %s: %s\n", what, err ? err : "(no message)");
}

/* Generation @gen fails at msync @fail_at, then commits; @prev loads in
 * between. */
static void fail_then_commit(uint64_t gen, unsigned fail_at, bool sticky,
                             const uint8_t *prev, size_t prev_len,
                             const uint8_t *next, size_t next_len,
                             const char *what)
{
    char *err = NULL;
    int ret = save(next, next_len, fail_at, sticky, &err);

    printf("generation %llu, %s: out_commit returned %d after %u msync "
           "calls, %u failed\n", (unsigned long long)gen, what, ret,
           msync_calls, msync_failed);
    CHECK(msync_failed > 0, "%s: the failure was not injected (is msync "
          "interposed? %u calls)", what, msync_calls);
    CHECK(ret == -1, "%s: out_commit returned %d", what, ret);
    check_message(err, what);
    free(err);
    check_loads(gen - 1, prev, prev_len, what);
    err = NULL;
    CHECK(save(next, next_len, 0, false, &err) == 0,
          "%s: the next save failed: %s", what, err);
    free(err);
    check_loads(gen, next, next_len, what);
}

int main(void)
{
    static const QemuTransportHostInfo host = {
        QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
        "10.0.13-failed-flush", warn,
    };
    const char *dir = getenv("CPR_TEST_DIR");
    size_t len[5] = { 300000, 1 << 20, 4096 * 3 + 5, 70000, 1 };
    uint8_t *buf[5];
    char *err = NULL;

    ops = qemu_transport_plugin_init(&host, &err);
    if (!ops) {
        fprintf(stderr, "init: %s\n", err);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/failed-flush-%d.img",
             dir && *dir ? dir : ".", (int)getpid());
    unlink(path);
    for (int i = 0; i < 5; i++) {
        buf[i] = pattern(len[i], (unsigned)i);
    }

    /* Generation 1, and proof that msync is ours: payload, record. */
    CHECK(save(buf[0], len[0], 0, false, &err) == 0, "gen 1: %s", err);
    printf("generation 1: committed with %u msync calls (payload, "
           "record)\n", msync_calls);
    CHECK(msync_calls == 2, "expected 2 msync calls per save, saw %u (not "
          "the msync path, or msync not interposed)", msync_calls);
    check_loads(1, buf[0], len[0], "gen 1");

    /* The case: the record's msync (the second) fails. */
    fail_then_commit(2, 2, false, buf[0], len[0], buf[1], len[1],
                     "record msync fails once");
    /* The payload's msync (the first). */
    fail_then_commit(3, 1, false, buf[1], len[1], buf[2], len[2],
                     "payload msync fails once");
    /* A dead device: the record's msync and the undo's. */
    fail_then_commit(4, 2, true, buf[2], len[2], buf[3], len[3],
                     "record and undo msync fail");
    fail_then_commit(5, 1, true, buf[3], len[3], buf[4], len[4],
                     "every msync fails from the payload's on");

    unlink(path);
    for (int i = 0; i < 5; i++) {
        free(buf[i]);
    }
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
