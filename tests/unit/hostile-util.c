/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hostile-util.h"
#include "format.h"
#include "unit-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

int hu_run_child(int (*fn)(void *), void *arg)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        exit(fn(arg));
    }
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    return status;
}

char *hu_status_str(int status)
{
    if (WIFEXITED(status)) {
        return g_strdup_printf("exit %d", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return g_strdup_printf("killed by SIG%s (%s)",
                               sigabbrev_np(WTERMSIG(status)),
                               strsignal(WTERMSIG(status)));
    }
    return g_strdup_printf("status 0x%x", status);
}

void hu_assert_exit_ok(int status, const char *what)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *s = hu_status_str(status);

        g_error("%s: child %s", what, s);
    }
}

gboolean hu_private_tmpfs(const char *dir, const char *opts)
{
    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", dir, "tmpfs", 0, opts) < 0) {
        g_printerr("# cannot mount a private tmpfs at %s: %s\n", dir,
                   strerror(errno));
        return FALSE;
    }
    return TRUE;
}

gboolean hu_on_tmpfs(const char *dir)
{
    struct statfs sfs;

    g_assert_cmpint(statfs(dir, &sfs), ==, 0);
    return sfs.f_type == TMPFS_MAGIC;
}

void hu_limit_file_size(uint64_t bytes, gboolean fatal)
{
    struct rlimit rl = { bytes, bytes };

    signal(SIGXFSZ, fatal ? SIG_DFL : SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
}

uint64_t hu_file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (uint64_t)st.st_size;
}

uint64_t hu_fs_free(const char *dir)
{
    struct statvfs sv;

    g_assert_cmpint(statvfs(dir, &sv), ==, 0);
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static void write_record(int fd, uint64_t gen, uint64_t off, uint64_t len,
                         uint64_t xxh3)
{
    /* Version 1 (the stream is the whole payload, no VM description):
     * what the transport still loads from a previous release. */
    CprRecord rec = {
        .version = 1,
        .generation = gen,
        .payload_off = off,
        .payload_len = len,
        .payload_xxh3 = xxh3,
        .ctime_ns = 1,
        .qemu_version = TU_QEMU_VERSION,
        .kernel_release = "forged",
    };
    uint8_t buf[CPR_REC_SIZE];
    CprRecord check;

    cpr_record_encode(&rec, buf);
    g_assert_cmpint(cpr_record_decode(buf, sizeof(buf), &check), ==,
                    CPR_DECODE_OK);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf),
                           CPR_SLOT_OFFSET(cpr_slot_for(gen))), ==,
                    sizeof(buf));
}

void hu_write_header(int fd, uint64_t gen, uint64_t off, uint64_t len,
                     uint64_t xxh3)
{
    static uint8_t zeros[CPR_HEADER_SIZE];
    CprSuperblock sb = { .version = CPR_SB_VERSION, .ctime_ns = 1 };
    uint8_t buf[CPR_SB_SIZE];

    memcpy(sb.uuid, "forged-image-id!", 16);
    cpr_sb_encode(&sb, buf);
    g_assert_cmpint(pwrite(fd, zeros, sizeof(zeros), 0), ==, sizeof(zeros));
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    if (len) {
        write_record(fd, gen, off, len, xxh3);
    }
}

void hu_forge_record(const char *path, uint64_t gen, uint64_t off,
                     uint64_t len, uint64_t xxh3)
{
    int fd = open(path, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    write_record(fd, gen, off, len, xxh3);
    close(fd);
}

static gboolean read_header(const char *path, uint8_t *hdr)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    g_assert_cmpint(fd, >=, 0);
    n = pread(fd, hdr, CPR_HEADER_SIZE, 0);
    close(fd);
    return n == CPR_HEADER_SIZE;
}

uint64_t hu_newest_generation(const char *path)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE);
    uint64_t gen = 0;
    CprSlots s;

    if (read_header(path, hdr)) {
        cpr_slots_decode(hdr, &s);
        gen = s.newest >= 0 ? s.rec[s.newest].generation : 0;
    }
    g_free(hdr);
    return gen;
}

gboolean hu_superblock_valid(const char *path)
{
    uint8_t *hdr = g_malloc0(CPR_HEADER_SIZE);
    CprSuperblock sb;
    gboolean ok;

    ok = read_header(path, hdr) &&
         cpr_sb_decode(hdr, CPR_BLOCK_SIZE, &sb) == CPR_DECODE_OK;
    g_free(hdr);
    return ok;
}

ssize_t hu_read_all(QemuTransportIn *t, uint8_t *buf, size_t cap,
                    size_t *got, char **errp)
{
    size_t done = 0;
    ssize_t n;

    do {
        if (got) {
            *got = done;
        }
        struct iovec iov[2] = {
            { buf + done, MIN((size_t)4099, cap - done) },
            { NULL, 0 },
        };

        iov[1].iov_base = buf + done + iov[0].iov_len;
        iov[1].iov_len = MIN((size_t)MiB + 17, cap - done - iov[0].iov_len);
        n = tu_ops()->in_readv(t, iov, 2, errp);
        if (n < 0) {
            return -1;
        }
        done += (size_t)n;
    } while (n > 0 && done < cap);
    return (ssize_t)done;
}

void hu_copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out;
    struct stat st;
    off_t left;

    g_assert_cmpint(in, >=, 0);
    unlink(to);
    out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    g_assert_cmpint(out, >=, 0);
    g_assert_cmpint(fstat(in, &st), ==, 0);
    for (left = st.st_size; left > 0;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);

        g_assert_cmpint(n, >, 0);
        left -= n;
    }
    close(in);
    close(out);
}

void hu_assert_error(const char *path, char *err, const char *what)
{
    char *prefix = g_strdup_printf("%s: ", path);

    if (!err || !g_str_has_prefix(err, prefix) || !strstr(err, what)) {
        g_error("message \"%s\" lacks \"%s\" or \"%s\"",
                err ? err : "(none)", prefix, what);
    }
    g_test_message("refused as expected: %s", err);
    g_free(prefix);
    free(err);
}

double hu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
