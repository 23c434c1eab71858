/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The USDT probes of transport-pmem.so (backend/probes.h): every one is
 * in the module's notes, and a save and a restore through the ABI fire
 * them, in order, as bpftrace sees them.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu/transport-plugin.h"

/* What a save and then a restore fire, in order (a write or read probe
 * pair may repeat). */
static const char *const save_order[] = {
    "out_open_entry", "out_open_return",
    "out_writev_entry", "out_writev_return",
    "out_pwritev_entry", "out_pwritev_return",
    "out_commit_entry",
    "commit_checksum", "commit_payload_persisted",
    "commit_record_written", "commit_record_persisted", "commit_published",
    "out_commit_return",
    "out_close_entry", "out_close_return",
    "in_open_entry", "in_open_return",
    "in_readv_entry", "in_readv_return",
    "in_preadv_entry", "in_preadv_return",
    "in_close_entry", "in_close_return",
};
/* Not fired by a good save. */
static const char *const others[] = { "out_abort_entry", "out_abort_return" };

/* probes_in_notes -- the names of the cpr_pmem probes in @path's notes */
static GPtrArray *probes_in_notes(const char *path)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    struct stat st;
    const uint8_t *img;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
    const char *shstr;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fstat(fd, &st), ==, 0);
    g_assert_cmpuint(st.st_size, >=, sizeof(Elf64_Ehdr));
    img = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    g_assert_true(img != MAP_FAILED);
    close(fd);
    eh = (const Elf64_Ehdr *)img;
    g_assert_cmpint(memcmp(eh->e_ident, ELFMAG, SELFMAG), ==, 0);
    g_assert_cmpuint(eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh), <=,
                     st.st_size);
    sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    shstr = (const char *)img + sh[eh->e_shstrndx].sh_offset;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        const uint8_t *p, *end;

        if (sh[i].sh_type != SHT_NOTE ||
            strcmp(shstr + sh[i].sh_name, ".note.stapsdt")) {
            continue;
        }
        p = img + sh[i].sh_offset;
        end = p + sh[i].sh_size;
        while (p + sizeof(Elf64_Nhdr) <= end) {
            const Elf64_Nhdr *n = (const Elf64_Nhdr *)p;
            const char *desc = (const char *)p + sizeof(*n) +
                               ((n->n_namesz + 3) & ~3u);
            const char *provider = desc + 3 * sizeof(uint64_t);

            if (n->n_type == 3 && !strcmp(provider, "cpr_pmem")) {
                g_ptr_array_add(names,
                                g_strdup(provider + strlen(provider) + 1));
            }
            p = (const uint8_t *)desc + ((n->n_descsz + 3) & ~3u);
        }
    }
    munmap((void *)img, st.st_size);
    return names;
}

static bool has(GPtrArray *a, const char *name)
{
    for (guint i = 0; i < a->len; i++) {
        if (!strcmp(g_ptr_array_index(a, i), name)) {
            return true;
        }
    }
    return false;
}

static void test_notes(void)
{
    g_autoptr(GPtrArray) names = probes_in_notes(TRANSPORT_SO);

    for (size_t i = 0; i < G_N_ELEMENTS(save_order); i++) {
        if (!has(names, save_order[i])) {
            g_test_fail_printf("%s: no probe %s", TRANSPORT_SO, save_order[i]);
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(others); i++) {
        if (!has(names, others[i])) {
            g_test_fail_printf("%s: no probe %s", TRANSPORT_SO, others[i]);
        }
    }
    g_assert_cmpuint(names->len, >=, 8);
}

/* A save and a restore of a few bytes through the ABI, as QEMU calls it. */
static void save_and_restore(const char *image)
{
    static const QemuTransportHostInfo host = {
        QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
        "10.2.2", NULL,
    };
    static const QemuTransportVm vm = {
        NULL, 0, "pc-q35-10.2", "qemu64", sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk)
    };
    char data[4096], back[4096];
    struct iovec iov = { data, sizeof(data) };
    void *h = dlopen(TRANSPORT_SO, RTLD_NOW | RTLD_LOCAL);
    const QemuTransportOps *ops;
    QemuTransportInitFunc init;
    QemuTransportOut *out;
    QemuTransportIn *in;
    char *err = NULL;

    g_assert_nonnull(h);
    *(void **)&init = dlsym(h, QEMU_TRANSPORT_INIT_SYMBOL);
    ops = init(&host, &err);
    g_assert_nonnull(ops);
    memset(data, 0x5a, sizeof(data));
    out = ops->out_open(image, &vm, &err);
    g_assert_null(err);
    g_assert_nonnull(out);
    g_assert_cmpint(ops->out_writev(out, &iov, 1, &err), ==, sizeof(data));
    g_assert_cmpint(ops->out_pwritev(out, &iov, 1, sizeof(data), &err), ==,
                    sizeof(data));
    g_assert_cmpint(ops->out_commit(out, &vm, &err), ==, 0);
    ops->out_close(out);

    in = ops->in_open(image, &vm, &err);
    g_assert_null(err);
    g_assert_nonnull(in);
    iov = (struct iovec){ back, sizeof(back) };
    g_assert_cmpint(ops->in_readv(in, &iov, 1, &err), ==, sizeof(back));
    g_assert_cmpint(ops->in_preadv(in, &iov, 1, sizeof(back), &err), ==,
                    sizeof(back));
    g_assert_cmpint(memcmp(back, data, sizeof(back)), ==, 0);
    ops->in_close(in);
    dlclose(h);
}

/* read_line -- one line of @fd within @ms, NULL at its end or timeout */
static char *read_line(int fd, GString *buf, int ms)
{
    for (;;) {
        char *nl = memchr(buf->str, '\n', buf->len);
        struct pollfd p = { fd, POLLIN, 0 };
        char chunk[4096];
        ssize_t n;

        if (nl) {
            char *line = g_strndup(buf->str, nl - buf->str);

            g_string_erase(buf, 0, nl - buf->str + 1);
            return line;
        }
        if (poll(&p, 1, ms) <= 0) {
            return NULL;
        }
        n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) {
            return NULL;
        }
        g_string_append_len(buf, chunk, n);
    }
}

static void test_fired(void)
{
    g_autofree char *dir = g_dir_make_tmp("cpr-probes-XXXXXX", NULL);
    g_autofree char *image = g_build_filename(dir, "vm.cpr", NULL);
    g_autofree char *script = NULL;
    g_autoptr(GString) buf = g_string_new(NULL);
    g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
    char *line;
    size_t want = 0;
    int out[2], status;
    pid_t bt;

    if (geteuid() != 0) {
        g_test_fail_printf("bpftrace needs root to attach uprobes");
        return;
    }
    script = g_strdup_printf("BEGIN { printf(\"ready\\n\"); } "
                             "usdt:%s:cpr_pmem:* /pid == %d/ "
                             "{ printf(\"@ %%s\\n\", probe); }",
                             TRANSPORT_SO, (int)getpid());
    g_assert_cmpint(pipe2(out, O_CLOEXEC), ==, 0);
    bt = fork();
    g_assert_cmpint(bt, >=, 0);
    if (bt == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        execlp("bpftrace", "bpftrace", "-e", script, (char *)NULL);
        fprintf(stderr, "cannot run bpftrace: %s\n", strerror(errno));
        _exit(127);
    }
    close(out[1]);
    /* BEGIN runs once every uprobe is in place. */
    while ((line = read_line(out[0], buf, 60000)) && strcmp(line, "ready")) {
        g_test_message("bpftrace: %s", line);
        g_free(line);
    }
    if (!line) {
        kill(bt, SIGKILL);
    }
    g_assert_nonnull(line);
    g_test_message("bpftrace: %s", line);
    g_free(line);

    save_and_restore(image);

    /* Events reach bpftrace's output a little later: read up to the last
     * one a restore fires (or for 30 s), then stop it. */
    while ((line = read_line(out[0], buf, 30000))) {
        const char *name = strrchr(line, ':');
        bool last = false;

        if (g_str_has_prefix(line, "@ ") && name) {
            g_ptr_array_add(seen, g_strdup(name + 1));
            last = !strcmp(name + 1, "in_close_return");
        }
        g_free(line);
        if (last) {
            break;
        }
    }
    kill(bt, SIGINT);
    close(out[0]);
    kill(bt, SIGKILL);      /* if it did not end on SIGINT */
    g_assert_cmpint(waitpid(bt, &status, 0), ==, bt);
    /* Each probe in order; a repeat of the one just seen is a repeated
     * write or read. */
    for (guint i = 0; i < seen->len; i++) {
        const char *s = g_ptr_array_index(seen, i);

        g_test_message("fired %s", s);
        if (want < G_N_ELEMENTS(save_order) && !strcmp(s, save_order[want])) {
            want++;
        }
    }
    g_assert_cmpuint(want, ==, G_N_ELEMENTS(save_order));
    unlink(image);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/probes/notes", test_notes);
    g_test_add_func("/probes/fired", test_fired);
    return g_test_run();
}
