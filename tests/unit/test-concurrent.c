/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The writer and the reader under QEMU's multifd threads
 * (transport-plugin.h: out_pwritev on several threads at once, on
 * disjoint ranges, alongside out_writev; in_preadv likewise alongside
 * in_readv), through the ABI, on the media named by the env.
 *
 * The hammer: a stream cut at random byte offsets into pieces, most
 * written by out_pwritev from several threads in random order (pieces
 * share pages; some are split over several iovecs), the first part
 * appended by out_writev meanwhile, some pieces never written (gaps,
 * over stale bytes of an earlier save: they must read back as zeros).
 * The image is set up so that the save must relocate above the live
 * payload and grow the file while the threads write.  Then several
 * threads read it back at random offsets while in_readv reads it in
 * order.  Build with -Db_sanitize=thread to check the locking too.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format.h"
#include "reader.h"
#include "unit-util.h"
#include "writer.h"

#define MiB (1u << 20)
#define THREADS 4

typedef struct Piece {
    uint64_t off, len;
    int owner;                  /* thread, or -1: a gap */
} Piece;

typedef struct Hammer {
    const QemuTransportOps *ops;
    QemuTransportOut *out;
    QemuTransportIn *in;
    const uint8_t *data;        /* the stream as it should read back */
    uint64_t len;
    uint64_t appended;          /* [0, appended) comes by out_writev */
    Piece *pieces;
    guint npieces;
    guint32 seed;
    gint failures;
} Hammer;

typedef struct Worker {
    Hammer *h;
    int id;
    pthread_t thread;
} Worker;

/* Pieces of [from, to): cut at random offsets, every 4th on a page
 * boundary, so that pieces of different threads share pages. */
static Piece *cut(GRand *r, uint64_t from, uint64_t to, guint *n)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(Piece));
    uint64_t at = from;

    while (at < to) {
        uint64_t len = g_rand_int_range(r, 1, 3) == 1 ?
                       g_rand_int_range(r, 1, 9000) :
                       g_rand_int_range(r, 1, 600 * 1024);
        Piece p;

        if (g_rand_int_range(r, 0, 4) == 0) {
            len = (at + len + 4095) / 4096 * 4096 - at;
        }
        p.off = at;
        p.len = MIN(len, to - at);
        /* one piece in ten is a gap */
        p.owner = g_rand_int_range(r, 0, 10) == 0 ? -1 :
                  g_rand_int_range(r, 0, THREADS);
        g_array_append_val(a, p);
        at += p.len;
    }
    *n = a->len;
    return (Piece *)g_array_free(a, FALSE);
}

static void *writer_thread(void *opaque)
{
    Worker *wk = opaque;
    Hammer *h = wk->h;
    GRand *r = g_rand_new_with_seed(h->seed * 31 + wk->id);
    /* plain memory: glib is not built for ThreadSanitizer */
    guint *mine = malloc(h->npieces * sizeof(guint)), n_mine = 0;

    for (guint i = 0; i < h->npieces; i++) {
        if (h->pieces[i].owner == wk->id) {
            mine[n_mine++] = i;
        }
    }
    /* random order */
    for (guint i = n_mine; i > 1; i--) {
        guint j = g_rand_int_range(r, 0, i);
        guint t = mine[i - 1];

        mine[i - 1] = mine[j];
        mine[j] = t;
    }
    for (guint k = 0; k < n_mine; k++) {
        const Piece *p = &h->pieces[mine[k]];
        struct iovec iov[3];
        int n = 1;
        char *err = NULL;
        ssize_t ret;

        iov[0] = (struct iovec){ (void *)(h->data + p->off), p->len };
        if (p->len > 2 && g_rand_boolean(r)) {
            /* a page header's worth, then the rest, then nothing */
            size_t pick = g_rand_int_range(r, 1, 64);
            size_t first = MIN(p->len - 1, pick);

            iov[0].iov_len = first;
            iov[1] = (struct iovec){ (void *)(h->data + p->off + first),
                                     p->len - first };
            iov[2] = (struct iovec){ NULL, 0 };
            n = 3;
        }
        ret = h->ops->out_pwritev(h->out, iov, n, (int64_t)p->off, &err);
        if (ret != (ssize_t)p->len) {
            g_printerr("pwritev %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                       ": %s\n", p->off, p->len, err ? err : "short");
            g_atomic_int_inc(&h->failures);
        }
        free(err);
    }
    free(mine);
    g_rand_free(r);
    return NULL;
}

static void *append_thread(void *opaque)
{
    Worker *wk = opaque;
    Hammer *h = wk->h;
    GRand *r = g_rand_new_with_seed(h->seed * 7);
    uint64_t at = 0;

    while (at < h->appended) {
        /* not in MIN(): it would draw twice */
        uint64_t step = g_rand_int_range(r, 1, 70000);
        uint64_t len = MIN(h->appended - at, step);
        struct iovec iov[2] = {
            { (void *)(h->data + at), len / 3 },
            { (void *)(h->data + at + len / 3), len - len / 3 },
        };
        char *err = NULL;

        if (h->ops->out_writev(h->out, iov, 2, &err) != (ssize_t)len) {
            g_printerr("writev: %s\n", err ? err : "short");
            g_atomic_int_inc(&h->failures);
            free(err);
            break;
        }
        at += len;
    }
    g_rand_free(r);
    return NULL;
}

static void *reader_thread(void *opaque)
{
    Worker *wk = opaque;
    Hammer *h = wk->h;
    GRand *r = g_rand_new_with_seed(h->seed * 13 + wk->id);
    uint8_t *buf = g_malloc(2 * MiB);

    for (int i = 0; i < 200; i++) {
        uint64_t off = g_rand_int_range(r, 0, (gint32)h->len);
        uint64_t len = g_rand_boolean(r) ? g_rand_int_range(r, 1, 5000) :
                       g_rand_int_range(r, 1, 2 * MiB);
        struct iovec iov[2] = {
            { buf, len / 2 }, { buf + len / 2, len - len / 2 },
        };
        uint64_t want = MIN(len, h->len - off);
        char *err = NULL;
        ssize_t n = h->ops->in_preadv(h->in, iov, 2, (int64_t)off, &err);

        if (n != (ssize_t)want || memcmp(buf, h->data + off, want) != 0) {
            g_printerr("preadv %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                       ": %zd %s\n", off, len, n, err ? err : "");
            g_atomic_int_inc(&h->failures);
        }
        free(err);
    }
    g_free(buf);
    g_rand_free(r);
    return NULL;
}

static void *sequential_thread(void *opaque)
{
    Worker *wk = opaque;
    Hammer *h = wk->h;
    uint8_t *buf = g_malloc(65536);
    uint64_t at = 0;
    ssize_t n;

    do {
        struct iovec iov = { buf, 4093 + (at % 3) * 20000 };
        char *err = NULL;

        n = h->ops->in_readv(h->in, &iov, 1, &err);
        if (n < 0 || memcmp(buf, h->data + at, n) != 0) {
            g_printerr("readv at %" G_GUINT64_FORMAT ": %s\n", at,
                       err ? err : "differs");
            g_atomic_int_inc(&h->failures);
            free(err);
            break;
        }
        at += (uint64_t)n;
    } while (n > 0);
    if (at != h->len) {
        g_atomic_int_inc(&h->failures);
    }
    g_free(buf);
    return NULL;
}

/* A save of @len bytes of @fill: the live payload of the next one. */
static void save_filled(const char *path, uint64_t len, int fill)
{
    uint8_t *buf = g_malloc(len);

    memset(buf, fill, len);
    tu_save(path, buf, len);
    g_free(buf);
}

static void hammer(guint32 seed)
{
    const QemuTransportOps *ops = tu_ops();
    char *name = g_strdup_printf("hammer-%u", seed);
    char *path = tu_path(name);
    GRand *r = g_rand_new_with_seed(seed);
    uint64_t first = 6 * MiB + g_rand_int_range(r, 0, MiB);
    Hammer h = { .ops = ops, .seed = seed };
    Worker w[THREADS + 1];
    uint8_t *data;
    char *err = NULL;

    /*
     * Save 1 at 2 MiB, save 2 above it, both of stale non-zero bytes;
     * save 3 (this one) then goes below save 2, with room for a stream
     * like it, and has to move above it and grow the file as it gets
     * three times as long.
     */
    save_filled(path, first, 0xa5);
    save_filled(path, first, 0x5a);
    h.len = 3 * first + g_rand_int_range(r, 0, MiB);
    h.appended = g_rand_int_range(r, 4096, 3 * MiB);
    h.pieces = cut(r, h.appended, h.len, &h.npieces);
    /* The stream ends with a written byte, so it is h.len long. */
    h.pieces[h.npieces - 1].owner = 0;
    data = tu_pattern(h.len, seed);
    for (guint i = 0; i < h.npieces; i++) {
        if (h.pieces[i].owner < 0) {
            memset(data + h.pieces[i].off, 0, h.pieces[i].len);
        }
    }
    h.data = data;

    tu_quiesce();
    h.out = ops->out_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(h.out);
    g_assert_cmpuint(cpr_writer_payload_offset((CprWriter *)h.out), ==,
                     2 * MiB);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (Worker){ .h = &h, .id = i };
        pthread_create(&w[i].thread, NULL, writer_thread, &w[i]);
    }
    w[THREADS] = (Worker){ .h = &h, .id = THREADS };
    pthread_create(&w[THREADS].thread, NULL, append_thread, &w[THREADS]);
    for (int i = 0; i <= THREADS; i++) {
        pthread_join(w[i].thread, NULL);
    }
    g_assert_cmpint(h.failures, ==, 0);
    /* It had to move: the live payload sits where it would have run. */
    g_assert_cmpuint(cpr_writer_payload_offset((CprWriter *)h.out), >,
                     2 * MiB);
    g_assert_cmpint(ops->out_commit(h.out, tu_vm(), &err), ==, 0);
    g_assert_null(err);
    ops->out_close(h.out);

    h.in = ops->in_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(h.in);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (Worker){ .h = &h, .id = i };
        pthread_create(&w[i].thread, NULL, reader_thread, &w[i]);
    }
    w[THREADS] = (Worker){ .h = &h, .id = THREADS };
    pthread_create(&w[THREADS].thread, NULL, sequential_thread, &w[THREADS]);
    for (int i = 0; i <= THREADS; i++) {
        pthread_join(w[i].thread, NULL);
    }
    g_assert_cmpint(h.failures, ==, 0);
    ops->in_close(h.in);
    tu_assert_loads(path, data, h.len);
    /* the room-making thread of in_close must not outlive the test */
    tu_quiesce();

    unlink(path);
    g_free(h.pieces);
    g_free(data);
    g_rand_free(r);
    g_free(path);
    g_free(name);
}

static void test_hammer(void)
{
    const char *n = g_getenv("CPR_HAMMER_ROUNDS");
    guint rounds = n ? (guint)atoi(n) : 6;

    for (guint i = 0; i < rounds; i++) {
        hammer(g_test_rand_int() ^ (i * 0x9e3779b9u));
    }
}

/*
 * Many threads writing small disjoint pieces of the same few pages, over
 * stale bytes: a piece must never be zeroed by a neighbour's first touch.
 */
typedef struct Shared {
    const QemuTransportOps *ops;
    QemuTransportOut *out;
    const uint8_t *data;
    gint failures;
} Shared;

#define SH_PAGES 8
#define SH_PIECE 61

typedef struct SharedWorker {
    Shared *s;
    int id;
    pthread_t thread;
} SharedWorker;

static void *shared_thread(void *opaque)
{
    SharedWorker *w = opaque;
    uint64_t total = SH_PAGES * 4096;

    for (uint64_t off = (uint64_t)w->id * SH_PIECE; off < total;
         off += THREADS * SH_PIECE) {
        struct iovec iov = { (void *)(w->s->data + off),
                             MIN((uint64_t)SH_PIECE, total - off) };
        char *err = NULL;

        if (w->s->ops->out_pwritev(w->s->out, &iov, 1, (int64_t)off, &err) !=
            (ssize_t)iov.iov_len) {
            g_atomic_int_inc(&w->s->failures);
        }
        free(err);
    }
    return NULL;
}

static void test_shared_pages(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("shared-pages");
    Shared s = { .ops = ops };
    SharedWorker w[THREADS];
    uint8_t *data = tu_pattern(SH_PAGES * 4096, 77);
    char *err = NULL;

    for (int round = 0; round < 20; round++) {
        /* stale bytes where this save goes: the save before the last */
        save_filled(path, SH_PAGES * 4096, 0xee);
        save_filled(path, SH_PAGES * 4096, 0xdd);
        tu_quiesce();
        s.out = ops->out_open(path, tu_vm(), &err);
        g_assert_nonnull(s.out);
        s.data = data;
        for (int i = 0; i < THREADS; i++) {
            w[i] = (SharedWorker){ .s = &s, .id = i };
            pthread_create(&w[i].thread, NULL, shared_thread, &w[i]);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(w[i].thread, NULL);
        }
        g_assert_cmpint(s.failures, ==, 0);
        g_assert_cmpint(ops->out_commit(s.out, tu_vm(), &err), ==, 0);
        ops->out_close(s.out);
        tu_assert_loads(path, data, SH_PAGES * 4096);
    }
    tu_quiesce();
    g_free(data);
    g_free(path);
}

/*
 * C5: when the file cannot grow, every thread gets the first failure's
 * message, not "an earlier write failed".  In a child with a file size
 * limit (posix_fallocate then fails with EFBIG).
 */
typedef struct Failing {
    const QemuTransportOps *ops;
    QemuTransportOut *out;
    const uint8_t *data;
    GMutex lock;
    GPtrArray *errors;
} Failing;

typedef struct FailWorker {
    Failing *f;
    int id;
    pthread_t thread;
} FailWorker;

static void *failing_thread(void *opaque)
{
    FailWorker *w = opaque;

    for (int i = 0; i < 16; i++) {
        uint64_t off = ((uint64_t)i * THREADS + w->id) * 4 * MiB;
        struct iovec iov = { (void *)w->f->data, MiB };
        char *err = NULL;

        if (w->f->ops->out_pwritev(w->f->out, &iov, 1, (int64_t)off,
                                   &err) < 0) {
            g_mutex_lock(&w->f->lock);
            g_ptr_array_add(w->f->errors, err);
            g_mutex_unlock(&w->f->lock);
        } else {
            free(err);
        }
    }
    return NULL;
}

static void test_first_error_wins(void)
{
    if (g_test_subprocess()) {
        const QemuTransportOps *ops = tu_ops();
        char *path = tu_path("first-error");
        Failing f = { .ops = ops, .errors = g_ptr_array_new_with_free_func(free) };
        FailWorker w[THREADS];
        struct rlimit lim = { 64 * MiB, 64 * MiB };
        uint8_t *data = tu_pattern(MiB, 3);
        char *err = NULL;
        const char *first;

        signal(SIGXFSZ, SIG_IGN);
        g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &lim), ==, 0);
        g_mutex_init(&f.lock);
        f.data = data;
        f.out = ops->out_open(path, tu_vm(), &err);
        g_assert_nonnull(f.out);
        for (int i = 0; i < THREADS; i++) {
            w[i] = (FailWorker){ .f = &f, .id = i };
            pthread_create(&w[i].thread, NULL, failing_thread, &w[i]);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(w[i].thread, NULL);
        }
        g_assert_cmpuint(f.errors->len, >, 0);
        first = g_ptr_array_index(f.errors, 0);
        g_test_message("first error: %s", first);
        g_assert_nonnull(strstr(first, "cannot grow"));
        for (guint i = 0; i < f.errors->len; i++) {
            g_assert_cmpstr(g_ptr_array_index(f.errors, i), ==, first);
        }
        /* and the commit says the same */
        g_assert_cmpint(ops->out_commit(f.out, tu_vm(), &err), ==, -1);
        g_assert_cmpstr(err, ==, first);
        free(err);
        ops->out_abort(f.out);
        ops->out_close(f.out);
        g_ptr_array_free(f.errors, TRUE);
        g_free(data);
        g_free(path);
        return;
    }
    g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed();
}

/*
 * C5, with two different failures: a 64 MiB store into a file another
 * process truncated to 3/4 of it faults after some milliseconds; once
 * its first bytes are in the file, another thread asks for a store past
 * the largest stream, which fails at once.  Whichever failed first, every
 * caller hears the same message: both stores and the commit.
 */
#define FIRST_LEN (64ull * MiB)

typedef struct Faulting {
    const QemuTransportOps *ops;
    QemuTransportOut *out;
    const uint8_t *data;
    char *err;
} Faulting;

static void *faulting_store(void *opaque)
{
    Faulting *f = opaque;
    struct iovec iov = { (void *)f->data, FIRST_LEN };

    g_assert_cmpint(f->ops->out_pwritev(f->out, &iov, 1, 0, &f->err), ==, -1);
    return NULL;
}

/* One save with both failures; TRUE if the quick one came first. */
static gboolean two_errors(const char *path, const uint8_t *data)
{
    const QemuTransportOps *ops = tu_ops();
    Faulting f = { .ops = ops, .data = data };
    struct iovec one = { (void *)data, 1 };
    char *err = NULL, *commit_err = NULL;
    uint8_t first[64];
    uint64_t base;
    pthread_t thread;
    gboolean quick_first;
    int fd;

    unlink(path);
    f.out = ops->out_open(path, tu_vm(), &err);
    g_assert_nonnull(f.out);
    /* Room for all of it with blocks, as "cpr-pmem create" makes it (a
     * growth by the stream would be written with pwrite(), which grows
     * a cut file again rather than fault), then the file cut to 3/4 of
     * the stream. */
    base = cpr_writer_payload_offset((CprWriter *)f.out);
    g_assert_cmpint(cpr_writer_populate_size((CprWriter *)f.out,
                                             base + FIRST_LEN, &err), ==, 0);
    fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)(base + FIRST_LEN / 4 * 3)), ==, 0);
    pthread_create(&thread, NULL, faulting_store, &f);
    /* Past its checks, storing: its bytes show in the file. */
    do {
        g_assert_cmpint(pread(fd, first, sizeof(first), (off_t)base), ==,
                        sizeof(first));
    } while (memcmp(first, data, sizeof(first)));
    g_assert_cmpint(ops->out_pwritev(f.out, &one, 1, (int64_t)1 << 61, &err),
                    ==, -1);
    pthread_join(thread, NULL);
    close(fd);
    quick_first = strstr(err, "stream too large") != NULL;
    g_assert_cmpstr(f.err, ==, err);
    g_assert_cmpint(ops->out_commit(f.out, tu_vm(), &commit_err), ==, -1);
    g_assert_cmpstr(commit_err, ==, err);
    free(err);
    free(f.err);
    free(commit_err);
    ops->out_abort(f.out);
    ops->out_close(f.out);
    return quick_first;
}

static void test_first_of_two_errors(void)
{
    if (g_test_subprocess()) {
        char *path = tu_path("first-of-two");
        uint8_t *data = tu_pattern(FIRST_LEN, 9);
        int quick = 0;

        for (int round = 0; round < 3; round++) {
            quick += two_errors(path, data);
        }
        g_printerr("the quick failure came first in %d of 3 saves\n", quick);
        g_free(data);
        g_free(path);
        return;
    }
    g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed();
}

/*
 * C2: the first touch of a page zeroes only what no store wrote, because
 * partial stores into one page take its lock bit in turn.  Every thread
 * writes its quarter of every page, all in the same order, meeting
 * before each page, so that the first touches of most pages race: a
 * store that zeroed a neighbour's quarter shows as zeros where the
 * neighbour's bytes belong.
 */
#define RACE_PAGES 4096u

typedef struct Racer {
    Shared *s;
    int id;
    atomic_uint *arrived;       /* rendezvous before each page */
    pthread_t thread;
} Racer;

static void *racer_thread(void *opaque)
{
    Racer *r = opaque;
    uint64_t quarter = 4096 / THREADS;

    for (uint64_t pg = 0; pg < RACE_PAGES; pg++) {
        uint64_t off = pg * 4096 + (uint64_t)r->id * quarter;
        struct iovec iov = { (void *)(r->s->data + off), quarter };
        char *err = NULL;
        unsigned spins = 0;

        /* All threads at this page before any stores into it: whichever
         * run at once meet at its first touch. */
        atomic_fetch_add(r->arrived, 1);
        while (atomic_load(r->arrived) < (pg + 1) * THREADS) {
            if (++spins % 1024 == 0) {
                sched_yield();
            }
        }

        if (r->s->ops->out_pwritev(r->s->out, &iov, 1, (int64_t)off, &err) !=
            (ssize_t)quarter) {
            g_atomic_int_inc(&r->s->failures);
        }
        free(err);
    }
    return NULL;
}

static void test_first_touch_race(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("first-touch-race");
    uint64_t len = RACE_PAGES * 4096ull;
    uint8_t *data = tu_pattern(len, 78);
    Shared s = { .ops = ops, .data = data };
    atomic_uint arrived;
    Racer r[THREADS];
    char *err = NULL;

    for (int round = 0; round < 12; round++) {
        tu_quiesce();
        s.out = ops->out_open(path, tu_vm(), &err);
        g_assert_nonnull(s.out);
        /* The room for all of it first: no growth between the stores. */
        g_assert_cmpint(ops->out_pwritev(s.out, &(struct iovec){ data, 1 }, 1,
                                         (int64_t)len - 1, &err), ==, 1);
        atomic_store(&arrived, 0);
        for (int i = 0; i < THREADS; i++) {
            r[i] = (Racer){ .s = &s, .id = i, .arrived = &arrived };
            pthread_create(&r[i].thread, NULL, racer_thread, &r[i]);
        }
        for (int i = 0; i < THREADS; i++) {
            pthread_join(r[i].thread, NULL);
        }
        g_assert_cmpint(s.failures, ==, 0);
        g_assert_cmpint(ops->out_commit(s.out, tu_vm(), &err), ==, 0);
        ops->out_close(s.out);
        tu_assert_loads(path, data, len);
    }
    tu_quiesce();
    g_free(data);
    g_free(path);
}

/*
 * C6: commit takes the write lock, so a store still in flight (outside
 * the ABI: QEMU joins its threads before it commits) is in the committed
 * payload whole, or refused after it; never half hashed.  A thread
 * rewrites a 64 MiB stream with other bytes, and once its first bytes
 * are in the file the main thread commits; if the commit returns 0, the
 * image loads one stream or the other, whole.  Without the lock, the commit hashed pages the store was
 * rewriting: a committed image that does not load.
 */
#define REWRITE_LEN (64ull * MiB)

typedef struct Rewrite {
    const QemuTransportOps *ops;
    QemuTransportOut *out;
    const uint8_t *data;
    int64_t ret;
} Rewrite;

static void *rewriter(void *opaque)
{
    Rewrite *r = opaque;
    struct iovec iov = { (void *)r->data, REWRITE_LEN };
    char *err = NULL;

    r->ret = r->ops->out_pwritev(r->out, &iov, 1, 0, &err);
    free(err);
    return NULL;
}

/* Which of @a, @b (REWRITE_LEN bytes each) @path loads: 'a', 'b', or
 * 'x' with *why (g_free() it) if neither or refused. */
static char loads_which(const char *path, const uint8_t *a, const uint8_t *b,
                        char **why)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(REWRITE_LEN + 1);
    QemuTransportIn *in;
    char *err = NULL, which = 'x';
    uint64_t done = 0;
    ssize_t n = 0;

    *why = NULL;
    in = ops->in_open(path, tu_vm(), &err);
    if (!in) {
        *why = g_strdup(err);
        free(err);
        g_free(got);
        return 'x';
    }
    do {
        struct iovec iov = { got + done, MIN(4 * MiB, REWRITE_LEN + 1 - done) };

        n = ops->in_readv(in, &iov, 1, &err);
        done += n > 0 ? (uint64_t)n : 0;
    } while (n > 0 && done <= REWRITE_LEN);
    ops->in_close(in);
    tu_quiesce();
    if (n < 0 || done != REWRITE_LEN) {
        *why = g_strdup_printf("read %llu bytes: %s", (unsigned long long)done,
                               err ? err : "");
    } else if (!memcmp(got, a, REWRITE_LEN)) {
        which = 'a';
    } else if (!memcmp(got, b, REWRITE_LEN)) {
        which = 'b';
    } else {
        *why = g_strdup("a mixture of both streams");
    }
    free(err);
    g_free(got);
    return which;
}

static void test_commit_waits_for_store(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *path = tu_path("commit-during-store");
    uint8_t *a = tu_pattern(REWRITE_LEN, 41), *b = tu_pattern(REWRITE_LEN, 42);
    struct iovec iov = { a, REWRITE_LEN };
    guint loaded[2] = { 0, 0 };

    for (int round = 0; round < 4; round++) {
        Rewrite r = { .ops = ops, .data = b };
        pthread_t thread;
        char *err = NULL, *why = NULL, which;
        uint8_t first[64];
        uint64_t base;
        int ret, fd;

        tu_quiesce();
        r.out = ops->out_open(path, tu_vm(), &err);
        g_assert_nonnull(r.out);
        g_assert_cmpint(ops->out_writev(r.out, &iov, 1, &err), ==,
                        REWRITE_LEN);
        pthread_create(&thread, NULL, rewriter, &r);
        /* Commit once the rewrite is storing: its bytes show in the file. */
        fd = open(path, O_RDONLY);
        g_assert_cmpint(fd, >=, 0);
        base = cpr_writer_payload_offset((CprWriter *)r.out);
        do {
            g_assert_cmpint(pread(fd, first, sizeof(first), (off_t)base), ==,
                            sizeof(first));
        } while (memcmp(first, b, sizeof(first)));
        close(fd);
        ret = ops->out_commit(r.out, tu_vm(), &err);
        pthread_join(thread, NULL);
        ops->out_close(r.out);
        if (ret < 0) {
            g_test_message("round %d: commit refused: %s", round, err);
            free(err);
            continue;
        }
        which = loads_which(path, a, b, &why);
        if (which == 'x') {
            g_error("round %d: committed (the rewrite returned %lld), then "
                    "%s: %s", round, (long long)r.ret, path, why);
        }
        loaded[which - 'a']++;
    }
    g_test_message("the commit came first %u times, the store %u times",
                   loaded[0], loaded[1]);
    g_free(a);
    g_free(b);
    g_free(path);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/concurrent/hammer", test_hammer);
    g_test_add_func("/concurrent/shared-pages", test_shared_pages);
    g_test_add_func("/concurrent/first-error-wins", test_first_error_wins);
    g_test_add_func("/concurrent/first-of-two-errors",
                    test_first_of_two_errors);
    g_test_add_func("/concurrent/first-touch-race", test_first_touch_race);
    g_test_add_func("/concurrent/commit-waits-for-store",
                    test_commit_waits_for_store);
    return g_test_run();
}
