/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "l1-host.h"
#include "line-socket.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

struct L1Host {
    char *dir;
    char *qemu;
    char *kernel, *initrd, *disk;
    char *nvdimm, *nvdimm_size;
    char *devdax;       /* the second NVDIMM's backing file */
    char *memmap;       /* DRAM-backed pmem instead of the NVDIMM */
    char *agent_path, *console;
    void (*log)(const char *line);
    GSubprocess *proc;
    LineSocket *agent;
    gint64 t0;
    int boots;
    gboolean tolerant, lost;
};

static void say(L1Host *h, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(L1Host *h, const char *fmt, ...)
{
    g_autofree char *s = NULL;
    va_list ap;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (h->log) {
        h->log(s);
    } else {
        g_message("%s", s);
    }
}

void l1_image(const char *script, const char *qemu, const char *build_root,
              const char *stock_qemu, char **kernel, char **initrd,
              char **disk, double *secs)
{
    const char *argv[] = { script, qemu, build_root, stock_qemu, NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) paths = NULL;
    GError *err = NULL;
    gint64 t0 = g_get_monotonic_time();
    int status;

    g_assert_nonnull(script);
    g_assert_nonnull(qemu);
    /* stderr passes through: a cold build says what it does */
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                 NULL, &status, &err);
    g_assert_no_error(err);
    g_spawn_check_wait_status(status, &err);
    g_assert_no_error(err);
    paths = g_strsplit(g_strchomp(out), "\n", -1);
    g_assert_cmpuint(g_strv_length(paths), ==, 3);
    *kernel = g_strdup(paths[0]);
    *initrd = g_strdup(paths[1]);
    *disk = g_strdup(paths[2]);
    if (secs) {
        *secs = l1_secs(t0, g_get_monotonic_time());
    }
}

L1Host *l1_new(const char *dir, const char *l1_qemu, const char *kernel,
               const char *initrd, const char *disk, const char *nvdimm_size,
               void (*log)(const char *line))
{
    L1Host *h = g_new0(L1Host, 1);
    const char *trunc[] = { "truncate", "-s", nvdimm_size, NULL, NULL };
    GError *err = NULL;
    int status;

    h->dir = g_strdup(dir);
    h->qemu = g_strdup(l1_qemu);
    h->kernel = g_strdup(kernel);
    h->initrd = g_strdup(initrd);
    h->disk = g_strdup(disk);
    h->nvdimm_size = g_strdup(nvdimm_size);
    h->nvdimm = g_build_filename(dir, "nvdimm.img", NULL);
    h->devdax = g_build_filename(dir, "nvdimm-devdax.img", NULL);
    h->agent_path = g_build_filename(dir, "agent.sock", NULL);
    h->console = g_build_filename(dir, "console.log", NULL);
    h->log = log;
    h->t0 = g_get_monotonic_time();
    trunc[3] = h->nvdimm;
    for (int i = 0; nvdimm_size && i < 2; i++) {
        if (i) {
            trunc[2] = L1_DEVDAX_SIZE;
            trunc[3] = h->devdax;
        }
        g_spawn_sync(NULL, (char **)trunc, NULL, G_SPAWN_SEARCH_PATH, NULL,
                     NULL, NULL, NULL, &status, &err);
        g_assert_no_error(err);
        g_assert_cmpint(status, ==, 0);
    }
    say(h, "L1 work directory %s, QEMU %s", dir, l1_qemu);
    return h;
}

void l1_use_memmap(L1Host *h, const char *memmap)
{
    g_free(h->memmap);
    h->memmap = g_strdup(memmap);
}

void l1_free(L1Host *h)
{
    if (!h) {
        return;
    }
    l1_kill(h);
    g_free(h->dir);
    g_free(h->qemu);
    g_free(h->kernel);
    g_free(h->initrd);
    g_free(h->disk);
    g_free(h->nvdimm);
    g_free(h->devdax);
    g_free(h->nvdimm_size);
    g_free(h->memmap);
    g_free(h->agent_path);
    g_free(h->console);
    g_free(h);
}

static void die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

void l1_set_tolerant(L1Host *h, gboolean tolerant)
{
    h->tolerant = tolerant;
}

gboolean l1_lost(L1Host *h)
{
    return h->lost;
}

gint64 l1_start(L1Host *h)
{
    g_autofree char *nv = g_strdup_printf(
        "memory-backend-file,id=nv0,share=on,mem-path=%s,size=%s", h->nvdimm,
        h->nvdimm_size);
    g_autofree char *drive = g_strdup_printf(
        "file=%s,format=raw,if=virtio,readonly=on", h->disk);
    g_autofree char *serial0 = g_strdup_printf("file:%s", h->console);
    g_autofree char *agent = g_strdup_printf(
        "socket,id=agent,path=%s,server=on,wait=off", h->agent_path);
    g_autofree char *log = g_strdup_printf("%s/l1-qemu-%d.log", h->dir,
                                           h->boots);
    g_autofree char *nv1 = g_strdup_printf(
        "memory-backend-file,id=nv1,share=on,mem-path=%s,size=%s", h->devdax,
        L1_DEVDAX_SIZE);
    g_autofree char *append = g_strdup_printf(
        "console=ttyS0 panic=-1 quiet%s%s", h->memmap ? " memmap=" : "",
        h->memmap ? h->memmap : "");
    /* The NVDIMMs (fs-dax, device DAX), or none (memmap=: DRAM pmem). */
    const char *nvdimms[] = {
        "-machine", "pc,nvdimm=on", "-m", "1G,slots=2,maxmem=4G",
        "-object", nv, "-device", "nvdimm,id=nvdimm0,memdev=nv0",
        "-object", nv1, "-device", "nvdimm,id=nvdimm1,memdev=nv1", NULL,
    };
    const char *dram[] = { "-machine", "pc", "-m", "2G", NULL };
    const char *argv[] = {
        h->qemu, "-accel", "tcg", "-smp", "2",
        "-kernel", h->kernel, "-initrd", h->initrd,
        "-append", append,
        "-drive", drive, "-display", "none", "-nodefaults", "-no-user-config",
        "-serial", serial0, "-chardev", agent, "-serial", "chardev:agent",
        NULL,
    };
    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GSocket) sock = NULL;
    GError *err = NULL;
    gint64 t;

    for (int i = 0; argv[i]; i++) {
        g_ptr_array_add(args, (char *)argv[i]);
    }
    for (const char *const *a = h->memmap ? dram : nvdimms; *a; a++) {
        g_ptr_array_add(args, (char *)*a);
    }
    g_ptr_array_add(args, NULL);
    g_subprocess_launcher_set_stdout_file_path(launcher, log);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
    g_unlink(h->agent_path);
    t = g_get_monotonic_time();
    h->proc = g_subprocess_launcher_spawnv(launcher,
                                           (const char *const *)args->pdata,
                                           &err);
    g_assert_no_error(err);
    h->boots++;
    h->lost = FALSE;
    sock = unix_socket_connect(h->agent_path, deadline_after_ms(30000), &err);
    g_assert_no_error(err);
    h->agent = line_socket_new(sock);
    return t;
}

void l1_kill(L1Host *h)
{
    if (h->proc) {
        g_subprocess_send_signal(h->proc, SIGKILL);
        g_subprocess_wait(h->proc, NULL, NULL);
        g_clear_object(&h->proc);
    }
    g_clear_pointer(&h->agent, line_socket_free);
}

static void show_console_tail(L1Host *h)
{
    g_autofree char *text = NULL;
    gsize len;

    if (g_file_get_contents(h->console, &text, &len, NULL)) {
        say(h, "--- %s (tail) ---\n%s", h->console,
            text + (len > 3000 ? len - 3000 : 0));
    }
}

char *l1_line(L1Host *h, guint timeout_s, gint64 *at)
{
    GError *err = NULL;
    char *line;

    if (h->lost) {
        return NULL;
    }
    line = line_socket_read(h->agent, deadline_after_ms(timeout_s * 1000),
                            &err);
    if (!line) {
        show_console_tail(h);
        if (h->tolerant) {
            say(h, "L1 lost: %s", err->message);
            g_error_free(err);
            h->lost = TRUE;
            return NULL;
        }
        g_error("L1 agent: %s", err->message);
    }
    if (at) {
        *at = g_get_monotonic_time();
    }
    say(h, "L1 %7.2f | %s", l1_secs(h->t0, g_get_monotonic_time()), line);
    if (g_str_has_prefix(line, "@@fail")) {
        show_console_tail(h);
        g_error("L1: %s", line);
    }
    return line;
}

char *l1_wait(L1Host *h, const char *prefix, guint timeout_s, gint64 *at,
              GString *out)
{
    gint64 deadline = g_get_monotonic_time() + timeout_s * G_USEC_PER_SEC;

    for (;;) {
        gint64 left = (deadline - g_get_monotonic_time()) / G_USEC_PER_SEC;
        char *line = l1_line(h, MAX(left, 1), at);

        if (!line) {
            return NULL;
        }
        if (g_str_has_prefix(line, prefix)) {
            return line;
        }
        if (out) {
            g_string_append_printf(out, "%s\n", line);
        }
        g_free(line);
    }
}

void l1_send(L1Host *h, const char *cmd)
{
    g_autofree char *line = g_strconcat(cmd, "\n", NULL);
    GError *err = NULL;

    if (h->lost) {
        return;
    }
    say(h, "L1 %7.2f < %s", l1_secs(h->t0, g_get_monotonic_time()), cmd);
    if (!line_socket_send(h->agent, line, strlen(line),
                          deadline_after_ms(10000), &err) && h->tolerant) {
        say(h, "L1 lost: %s", err->message);
        g_error_free(err);
        h->lost = TRUE;
        return;
    }
    g_assert_no_error(err);
}

int l1_run(L1Host *h, const char *cmd, GString *out)
{
    g_autofree char *rc = NULL;

    l1_send(h, cmd);
    rc = l1_wait(h, "@@rc ", L1_CMD_TIMEOUT_S, NULL, out);
    return rc ? atoi(rc + 5) : -1;
}

void l1_run_ok(L1Host *h, const char *cmd, GString *out)
{
    int rc = l1_run(h, cmd, out);

    if (!h->lost) {
        g_assert_cmpint(rc, ==, 0);
    }
}

gboolean l1_wait_boot(L1Host *h, gint64 start, double *to_userspace,
                      double *to_mounted, gboolean *first_boot)
{
    g_autofree char *init = NULL, *ready = NULL;
    gint64 t_init, t_ready;

    init = l1_wait(h, "@@init", L1_BOOT_TIMEOUT_S, &t_init, NULL);
    ready = init ? l1_wait(h, "@@ready", L1_BOOT_TIMEOUT_S, &t_ready, NULL)
                 : NULL;
    if (!ready) {
        return FALSE;
    }
    g_assert_nonnull(strstr(ready, "dax=always"));
    *to_userspace = l1_secs(start, t_init);
    *to_mounted = l1_secs(t_init, t_ready);
    if (first_boot) {
        *first_boot = strstr(ready, "made-fs-in") != NULL;
    }
    return TRUE;
}
