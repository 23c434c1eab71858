/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile images (issue 8, items 1, 4 and 5): whatever a file claims, a
 * save or a restore ends in a clean error or a correct result, never in
 * an abort or a SIGBUS, and costs what the file really holds, not what
 * its header claims.  Everything runs through the ABI, the risky part in
 * a forked child whose exit status is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "hostile-util.h"
#include "unit-util.h"

/* The forged files: a real 64 KiB payload at 2 MiB, nothing else. */
#define DATA_LEN (64 * 1024ull)
#define FILE_LEN (2 * MiB + DATA_LEN)
#define STREAM_LEN 5000

typedef struct Crafted {
    const char *path;
    uint64_t off, len;
} Crafted;

/*
 * What QEMU does: out_open, a short out_writev, out_commit, out_close.
 * Any step may refuse, naming the file; a save that commits must load
 * back byte-exact; the file never grows beyond what real data needs.
 */
static int crafted_child(void *opaque)
{
    const Crafted *c = opaque;
    const QemuTransportOps *ops = tu_ops();
    uint8_t *stream = tu_pattern(STREAM_LEN, 77);
    struct iovec iov[2] = {
        { stream, 1234 }, { stream + 1234, STREAM_LEN - 1234 },
    };
    QemuTransportOut *t;
    gboolean committed = FALSE;
    char *err = NULL;
    ssize_t n;

    /* An absurd growth kills the child (SIGXFSZ) before it allocates
     * anything, rather than filling the disk or failing "cleanly". */
    hu_limit_file_size(1 * GiB, TRUE);
    t = ops->out_open(c->path, tu_vm(), &err);
    if (!t) {
        hu_assert_error(c->path, err, "");
    } else {
        n = ops->out_writev(t, iov, 2, &err);
        if (n < 0) {
            hu_assert_error(c->path, err, "");
            err = NULL;
            g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, -1);
            hu_assert_error(c->path, err, "");
            ops->out_abort(t);
        } else {
            g_assert_cmpint(n, ==, STREAM_LEN);
            if (ops->out_commit(t, tu_vm(), &err) == 0) {
                committed = TRUE;
            } else {
                hu_assert_error(c->path, err, "");
                ops->out_abort(t);
            }
        }
        ops->out_close(t);
    }
    /* Real data: 64 KiB and a 5000-byte stream.  The initial 8 MiB, room
     * above a (real, 64 KiB) live payload and doubling stay far below. */
    g_assert_cmpuint(hu_file_size(c->path), <=, 64 * MiB);
    if (committed) {
        tu_assert_loads(c->path, stream, STREAM_LEN);
    }
    g_free(stream);
    return 0;
}

static void make_crafted(const char *path, const uint8_t *data,
                         uint64_t off, uint64_t len)
{
    int fd;

    unlink(path);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    g_assert_cmpint(fd, >=, 0);
    /* Generation 1: a real image.  Generation 2, the newest: forged. */
    hu_write_header(fd, 1, 2 * MiB, DATA_LEN, XXH3_64bits(data, DATA_LEN));
    g_assert_cmpint(pwrite(fd, data, DATA_LEN, 2 * MiB), ==, DATA_LEN);
    close(fd);
    hu_forge_record(path, 2, off, len, 0x0123456789abcdefull);
}

/*
 * Item 1: a newest record with an absurd payload offset/length (correct
 * checksums) must not abort the writer.  The old writer hit
 * "cpr_persist_prefault: Assertion 'off <= p->len'" on some of these.
 */
static void test_crafted_records(void)
{
    static const uint64_t offs[] = {
        0, 4096, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 2 * MiB + 4096,
        FILE_LEN - 1, FILE_LEN, FILE_LEN + 1, 8 * MiB, 1ull << 40,
        (uint64_t)INT64_MAX - 2 * MiB + 1, (uint64_t)INT64_MAX, 1ull << 63,
        UINT64_MAX - 2 * MiB + 1, UINT64_MAX - 4095, UINT64_MAX,
    };
    static const uint64_t lens[] = {
        0, 1, 4095, DATA_LEN - 1, DATA_LEN, DATA_LEN + 1, 2 * MiB, 6 * MiB,
        1 * GiB, 1ull << 40,
        /* len + len / 4 just below 2^63 and 2^64 (the example) */
        7378697629482142925ull, 0x6666666666666666ull,
        14757395258965544141ull, 0xccccccccccccccccull,
        (uint64_t)INT64_MAX - 2 * MiB, (uint64_t)INT64_MAX, 1ull << 63,
        UINT64_MAX - 2 * MiB + 1, UINT64_MAX,
        0 /* -off: the end wraps to 0 */, 1 /* 2 MiB - off: to 2 MiB */,
        2 /* UINT64_MAX - off + 1 + 4096: wraps past the header */,
    };
    char *path = tu_path("crafted");
    uint8_t *data = tu_pattern(DATA_LEN, 5);
    GString *bad = g_string_new(NULL);
    GHashTable *kinds = g_hash_table_new_full(g_str_hash, g_str_equal,
                                              g_free, NULL);
    GHashTableIter it;
    gpointer kind, count;
    int nbad = 0, total = 0;

    tu_quiesce();
    for (size_t i = 0; i < G_N_ELEMENTS(offs); i++) {
        for (size_t j = 0; j < G_N_ELEMENTS(lens); j++) {
            Crafted c = { path, offs[i], lens[j] };
            size_t wrap = G_N_ELEMENTS(lens) - 3;
            int status;

            if (j == wrap) {
                c.len = 0 - c.off;
            } else if (j == wrap + 1) {
                c.len = 2 * MiB - c.off;
            } else if (j == wrap + 2) {
                c.len = 0 - c.off + 4096;
            }
            make_crafted(path, data, c.off, c.len);
            status = hu_run_child(crafted_child, &c);
            total++;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char *s = hu_status_str(status);

                g_hash_table_insert(kinds, g_strdup(s), GINT_TO_POINTER(
                    GPOINTER_TO_INT(g_hash_table_lookup(kinds, s)) + 1));
                g_test_message("offset %llu length %llu: %s",
                               (unsigned long long)c.off,
                               (unsigned long long)c.len, s);
                if (nbad++ < 10) {
                    g_string_append_printf(bad, "  offset %llu length %llu: "
                                           "%s\n",
                                           (unsigned long long)c.off,
                                           (unsigned long long)c.len, s);
                }
                g_free(s);
            }
        }
    }
    g_test_message("%d of %d offset/length combinations failed", nbad,
                   total);
    g_hash_table_iter_init(&it, kinds);
    while (g_hash_table_iter_next(&it, &kind, &count)) {
        g_test_message("  %d: %s", GPOINTER_TO_INT(count),
                       (const char *)kind);
    }
    g_hash_table_destroy(kinds);
    if (nbad) {
        g_error("%d of %d offset/length combinations failed, e.g.:\n%s",
                nbad, total, bad->str);
    }
    g_string_free(bad, TRUE);
    g_free(data);
    g_free(path);
}

/*
 * A sparse file of @size with a valid header claiming [2 MiB, size), of
 * which only the first MiB holds data (so the hole is not at byte 0).
 */
static void make_sparse_claim(const char *path, uint64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    uint8_t *data = tu_pattern(MiB, 3);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    hu_write_header(fd, 1, 2 * MiB, size - 2 * MiB, 0x5eed5eed5eedull);
    g_assert_cmpint(pwrite(fd, data, MiB, 2 * MiB), ==, MiB);
    close(fd);
    g_free(data);
}

/*
 * Item 4: a 1 GiB sparse image on a 64 MiB tmpfs.  Reading its holes
 * through a mapping allocates them: the old reader filled the tmpfs and
 * died of SIGBUS.  in_open must refuse at once and allocate nothing.
 */
static int sparse_on_tmpfs_child(void *opaque)
{
    const char *dir = opaque;
    char *path = g_build_filename(dir, "sparse.cpr", NULL);
    uint64_t before, after;
    char *err = NULL;
    double t0, dt;

    if (!hu_private_tmpfs(dir, "size=64m")) {
        return 77;
    }
    make_sparse_claim(path, 1 * GiB);
    before = hu_fs_free(dir);
    t0 = hu_now();
    g_assert_null(tu_ops()->in_open(path, tu_vm(), &err));
    dt = hu_now() - t0;
    hu_assert_error(path, err, "");
    after = hu_fs_free(dir);
    g_test_message("in_open refused in %.3f s; free %llu -> %llu bytes", dt,
                   (unsigned long long)before, (unsigned long long)after);
    g_assert_cmpfloat(dt, <, 5.0);
    g_assert_cmpuint(after + MiB, >=, before);
    g_assert_cmpuint(hu_file_size(path), ==, 1 * GiB);
    g_free(path);
    return 0;
}

static void test_sparse_on_small_tmpfs(void)
{
    char *dir = tu_path("tmpfs64");
    int status;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_quiesce();
    status = hu_run_child(sparse_on_tmpfs_child, dir);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        g_test_skip("cannot mount a private tmpfs");
    } else {
        hu_assert_exit_ok(status, "in_open of a sparse image on a tmpfs");
    }
    g_free(dir);
}

/* Run @argv with a 10 s watchdog; its exit status, wall time, max RSS. */
static int run_measured(char *const *argv, double *secs, long *rss_kib)
{
    struct rusage ru;
    double t0 = hu_now();
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        pid_t got = wait4(pid, &status, WNOHANG, &ru);

        g_assert_cmpint(got, >=, 0);
        if (got == pid) {
            break;
        }
        if (hu_now() - t0 > 10.0) {
            kill(pid, SIGKILL);
        }
        g_usleep(2000);
    }
    *secs = hu_now() - t0;
    *rss_kib = ru.ru_maxrss;
    return status;
}

static int cheap_refusal_child(void *opaque)
{
    const uint64_t *size = opaque;
    char *name = g_strdup_printf("claim-%llu", (unsigned long long)*size);
    char *dir = tu_path(name);
    char *path = g_build_filename(dir, "huge-claim.cpr", NULL);
    char *in_open_argv[] = { (char *)"/proc/self/exe", (char *)"--in-open",
                             path, NULL };
    char *check_argv[] = { (char *)CPR_PMEM_TOOL, (char *)"check", path,
                           NULL };
    char *const *argvs[] = { in_open_argv, check_argv };
    static const char *const names[] = { "in_open", "cpr-pmem check" };
    int failed = 0;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    /* A sparse file on tmpfs is only safe to read on a tmpfs that
     * cannot fill the machine's memory if the reader allocates. */
    if (hu_on_tmpfs(dir) && !hu_private_tmpfs(dir, "size=64m")) {
        return 77;
    }
    make_sparse_claim(path, *size);
    for (size_t i = 0; i < G_N_ELEMENTS(argvs); i++) {
        double secs;
        long rss;
        int status = run_measured(argvs[i], &secs, &rss);
        char *s = hu_status_str(status);

        g_test_message("%s of a %llu GiB claim: %s in %.3f s, max RSS %ld "
                       "KiB", names[i],
                       (unsigned long long)(*size / GiB), s, secs, rss);
        /* 1: refused (and the message named the file) */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 1 || secs >= 5.0 ||
            rss >= 100 * 1024) {
            g_printerr("# %s of a %llu GiB claim: %s in %.3f s, max RSS %ld "
                       "KiB (want exit 1, < 5 s, < 100 MB)\n", names[i],
                       (unsigned long long)(*size / GiB), s, secs, rss);
            failed = 1;
        }
        g_free(s);
    }
    unlink(path);
    g_free(path);
    g_free(dir);
    g_free(name);
    return failed;
}

/*
 * Item 5: a 12 KiB header on a sparse file, its record claiming the whole
 * file.  in_open and "cpr-pmem check" must refuse in well under a second
 * (asserted: < 5 s) with bounded memory (< 100 MB): the cost is that of
 * the real data, not of the claim.
 */
static void check_cheap_refusal(uint64_t size)
{
    int status;

    tu_quiesce();
    status = hu_run_child(cheap_refusal_child, &size);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        g_test_skip("cannot mount a private tmpfs");
        return;
    }
    hu_assert_exit_ok(status, "refusing a sparse claim");
}

static void test_sparse_claim_1t(void)
{
    check_cheap_refusal(1ull << 40);
}

static void test_sparse_claim_16g(void)
{
    check_cheap_refusal(16 * GiB);
}

/* Child mode for the RSS measurement: a fresh process doing in_open. */
static int in_open_main(const char *path)
{
    char *err = NULL;
    QemuTransportIn *t = tu_ops()->in_open(path, tu_vm(), &err);
    char *prefix = g_strdup_printf("%s: ", path);
    int ret;

    if (t) {
        tu_ops()->in_close(t);
        return 0;
    }
    fprintf(stderr, "%s\n", err);
    ret = g_str_has_prefix(err, prefix) ? 1 : 3;
    free(err);
    g_free(prefix);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--in-open") == 0) {
        return in_open_main(argv[2]);
    }
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hostile/crafted-records", test_crafted_records);
    g_test_add_func("/hostile/sparse-on-small-tmpfs",
                    test_sparse_on_small_tmpfs);
    g_test_add_func("/hostile/sparse-claim-1t", test_sparse_claim_1t);
    g_test_add_func("/hostile/sparse-claim-16g", test_sparse_claim_16g);
    return g_test_run();
}
