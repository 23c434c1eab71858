/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "unit-util.h"
#include "binding.h"
#include "cmdline.h"
#include "format.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static pid_t dir_owner;

void tu_quiesce(void)
{
    char *path = tu_path("no-such-dir/quiesce");
    char *err = NULL;

    /* out_open stops the room-making first, whatever happens next. */
    g_assert_null(tu_ops()->out_open(path, tu_vm(), &err));
    free(err);
    g_free(path);
}

CprWriter *tu_writer_open(const char *path)
{
    char *err = NULL;
    CprWriter *w;

    /* The VM tu_vm() describes, as out_open would record it. */
    const CprVm vm = { tu_vm(), NULL, 0 };
    static const CprHost host = { TU_QEMU_VERSION, NULL, NULL };

    tu_quiesce();
    w = cpr_writer_open_vm(path, &host, &vm, &err);
    g_assert_null(err);
    g_assert_nonnull(w);
    return w;
}

const char *const tu_cmdline[] = {
    "/usr/bin/qemu-system-x86_64", "-machine", "q35", "-m", "512M",
    "-smp", "2", "-nodefaults", "-device", "virtio-net-pci,id=net0",
    "-global", "migration.x-ignore-shared=on", NULL,
};

static GMutex warn_lock;
static GPtrArray *warnings;

static void record_warning(const char *msg)
{
    g_mutex_lock(&warn_lock);
    if (!warnings) {
        warnings = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(warnings, g_strdup(msg));
    g_mutex_unlock(&warn_lock);
    g_test_message("warning: %s", msg);
}

gboolean tu_warned(const char *what)
{
    gboolean found = FALSE;

    g_mutex_lock(&warn_lock);
    for (guint i = 0; warnings && i < warnings->len && !found; i++) {
        found = strstr(g_ptr_array_index(warnings, i), what) != NULL;
    }
    g_mutex_unlock(&warn_lock);
    return found;
}

guint tu_nr_warnings(void)
{
    guint n;

    g_mutex_lock(&warn_lock);
    n = warnings ? warnings->len : 0;
    g_mutex_unlock(&warn_lock);
    return n;
}

void tu_clear_warnings(void)
{
    g_mutex_lock(&warn_lock);
    if (warnings) {
        g_ptr_array_set_size(warnings, 0);
    }
    g_mutex_unlock(&warn_lock);
}

void tu_set_cmdline(const char *const *argv)
{
    GString *s = g_string_new(NULL);

    for (argv = argv ? argv : tu_cmdline; *argv; argv++) {
        g_string_append_len(s, *argv, (gssize)strlen(*argv) + 1);
    }
    cpr_cmdline_set_for_tests(s->str, s->len);
    g_string_free(s, TRUE);
}

const QemuTransportVm *tu_vm(void)
{
    static const QemuTransportVm vm = {
        .ram = NULL, .nr_ram = 0, .machine = TU_MACHINE, .cpu = TU_CPU,
    };

    return &vm;
}

const QemuTransportOps *tu_ops(void)
{
    static const QemuTransportOps *ops;

    if (!ops) {
        /* Valid for the life of the process, as QEMU's is. */
        static const QemuTransportHostInfo host = {
            QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
            TU_QEMU_VERSION, record_warning,
        };
        char *err = NULL;

        tu_set_cmdline(NULL);
        ops = qemu_transport_plugin_init(&host, &err);
        g_assert_null(err);
        g_assert_nonnull(ops);
    }
    return ops;
}

static void remove_dir(void)
{
    char *cmd;

    /* Forked children exit through here too: only the creator cleans. */
    if (getpid() == dir_owner) {
        cmd = g_strdup_printf("rm -rf '%s'", dir);
        if (system(cmd) != 0) {
            g_printerr("could not remove %s\n", dir);
        }
        g_free(cmd);
    }
    g_free(dir);
}

const char *tu_dir(void)
{
    if (!dir) {
        const char *base = g_getenv("CPR_TEST_DIR");
        dir = g_strdup_printf("%s/cpr-unit-XXXXXX",
                              base ? base : g_get_tmp_dir());
        g_assert_nonnull(g_mkdtemp(dir));
        dir_owner = getpid();
        /* Traversable by the "as nobody" sub-tests. */
        g_assert_cmpint(chmod(dir, 0755), ==, 0);
        atexit(remove_dir);
    }
    return dir;
}

void tu_test_init(int *argc, char ***argv)
{
    /* Reachable until exit: GLib keeps pointers into it. */
    static char **args;

    args = g_new0(char *, (size_t)*argc + 2);
    memcpy(args, *argv, sizeof(char *) * (size_t)*argc);
    args[*argc] = (char *)"--keep-going";
    *argc += 1;
    *argv = args;
    g_test_init(argc, argv, NULL);
}

static void run_isolated(gconstpointer data)
{
    GTestFunc fn = (GTestFunc)(uintptr_t)data;

    if (g_test_subprocess()) {
        fn();
        return;
    }
    /* The case's own directory inside ours (removed with it). */
    g_setenv("CPR_TEST_DIR", tu_dir(), TRUE);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDOUT |
                           G_TEST_SUBPROCESS_INHERIT_STDERR);
    if (!g_test_trap_has_passed()) {
        g_test_fail_printf("%s failed in its own process (its output "
                           "above)", g_test_get_path());
    }
}

void tu_add_isolated(const char *path, GTestFunc fn)
{
    g_test_add_data_func(path, (gconstpointer)(uintptr_t)fn, run_isolated);
}

char *tu_path(const char *name)
{
    return g_build_filename(tu_dir(), name, NULL);
}

uint8_t *tu_pattern(size_t len, uint32_t seed)
{
    uint8_t *buf = g_malloc(len ? len : 1);
    uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    for (; i < len; i++) {
        buf[i] = (uint8_t)(seed + i);
    }
    return buf;
}

static gboolean expect_pmem(void)
{
    const char *e = g_getenv("CPR_EXPECT_PMEM");

    return e && strcmp(e, "1") == 0;
}

void tu_save_aborted(const char *path, const uint8_t *buf, size_t len,
                     size_t abort_at)
{
    const QemuTransportOps *ops = tu_ops();
    static const size_t sizes[] = { 1, 4093, 65536 + 7, 3, 1 << 20, 511 };
    QemuTransportOut *t;
    char *err = NULL;
    size_t done = 0;
    int k = 0;

    t = ops->out_open(path, tu_vm(), &err);
    g_assert_null(err);
    g_assert_nonnull(t);
    g_assert_cmpint(cpr_writer_is_pmem((CprWriter *)t), ==, expect_pmem());
    while (done < len && done < abort_at) {
        struct iovec iov[3];
        int n = 0;
        size_t before = done;

        for (; n < 3 && done < len; n++, k++) {
            size_t step = MIN(sizes[k % G_N_ELEMENTS(sizes)], len - done);

            iov[n] = (struct iovec){ (void *)(buf + done), step };
            done += step;
        }
        g_assert_cmpint(ops->out_writev(t, iov, n, &err), ==, done - before);
        g_assert_null(err);
    }
    if (abort_at == (size_t)-1) {
        g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, 0);
        g_assert_null(err);
    } else {
        ops->out_abort(t);
    }
    ops->out_close(t);
}

void tu_save(const char *path, const uint8_t *buf, size_t len)
{
    tu_save_aborted(path, buf, len, (size_t)-1);
}

void tu_assert_loads(const char *path, const uint8_t *buf, size_t len)
{
    const QemuTransportOps *ops = tu_ops();
    uint8_t *got = g_malloc(len + 16);
    QemuTransportIn *t;
    char *err = NULL;
    size_t done = 0;
    ssize_t n;

    t = ops->in_open(path, tu_vm(), &err);
    if (err) {
        g_error("%s", err);
    }
    g_assert_nonnull(t);
    do {
        /* Odd chunk sizes, one of them past the end of the stream. */
        struct iovec iov[2] = {
            { got + done, MIN((size_t)777, len + 16 - done) },
            { NULL, 0 },
        };

        iov[1].iov_base = got + done + iov[0].iov_len;
        iov[1].iov_len = MIN((size_t)(1 << 20), len + 16 - done -
                             iov[0].iov_len);
        n = ops->in_readv(t, iov, 2, &err);
        g_assert_cmpint(n, >=, 0);
        done += (size_t)n;
    } while (n > 0);
    g_assert_null(err);
    g_assert_cmpuint(done, ==, len);
    g_assert_true(memcmp(got, buf, len) == 0);
    ops->in_close(t);
    g_free(got);
}

static void assert_message(const char *path, char *err, const char *what)
{
    char *prefix = g_strdup_printf("%s: ", path);

    g_assert_nonnull(err);
    if (!g_str_has_prefix(err, prefix) || !strstr(err, what)) {
        g_error("message \"%s\" lacks \"%s\" or \"%s\"", err, prefix, what);
    }
    g_test_message("refused as expected: %s", err);
    g_free(prefix);
    free(err);
}

void tu_assert_save_refused(const char *path, const char *what)
{
    char *err = NULL;

    g_assert_null(tu_ops()->out_open(path, tu_vm(), &err));
    assert_message(path, err, what);
}

void tu_assert_load_refused(const char *path, const char *what)
{
    char *err = NULL;

    g_assert_null(tu_ops()->in_open(path, tu_vm(), &err));
    assert_message(path, err, what);
}

uint64_t tu_newest_generation(const char *path, int *slot)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE);
    int fd = open(path, O_RDONLY);
    CprSlots s;
    uint64_t gen;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, CPR_HEADER_SIZE, 0), ==, CPR_HEADER_SIZE);
    close(fd);
    cpr_slots_decode(hdr, &s);
    g_assert_cmpint(s.newest, >=, 0);
    *slot = s.newest;
    gen = s.rec[s.newest].generation;
    g_free(hdr);
    return gen;
}

void tu_run_as_nobody(void (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    int status;

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
            setuid(65534) < 0) {
            _exit(2);
        }
        fn(arg);
        _exit(0);
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

void tu_write_file(const char *path, const void *buf, size_t len)
{
    GError *error = NULL;

    g_assert_true(g_file_set_contents(path, buf, (gssize)len, &error));
}

void tu_flip_bit(const char *path, uint64_t off, int bit)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, &b, 1, (off_t)off), ==, 1);
    b ^= (uint8_t)(1u << bit);
    g_assert_cmpint(pwrite(fd, &b, 1, (off_t)off), ==, 1);
    close(fd);
}
