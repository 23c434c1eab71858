/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The command line difference (BINDING.md, "Command line"): pure. */
#include <glib.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

#include "cmdline.h"

/* A NUL-separated argument list from the arguments (NULL-terminated). */
static GString *args(const char *first, ...)
{
    GString *s = g_string_new(NULL);
    const char *a = first;
    va_list ap;

    va_start(ap, first);
    for (; a; a = va_arg(ap, const char *)) {
        g_string_append_len(s, a, (gssize)strlen(a) + 1);
    }
    va_end(ap);
    return s;
}

/* The diff as one string, lines joined by '\n'. */
static char *diff(GString *a, const char *ma, const char *ca, GString *b,
                  const char *mb, const char *cb)
{
    CprCmdlineDiff d;
    GString *out = g_string_new(NULL);

    g_assert_cmpint(cpr_cmdline_diff(a->str, a->len, ma, ca, b->str, b->len,
                                     mb, cb, &d), ==, 0);
    for (size_t i = 0; i < d.nr; i++) {
        g_string_append_printf(out, "%s%s", i ? "\n" : "", d.lines[i]);
    }
    cpr_cmdline_diff_free(&d);
    g_string_free(a, TRUE);
    g_string_free(b, TRUE);
    return g_string_free(out, FALSE);
}

static void expect(char *got, const char *want)
{
    if (strcmp(got, want)) {
        g_error("diff:\n%s\nexpected:\n%s", got, want);
    }
    g_free(got);
}

#define Q "qemu-system-x86_64"
#define M "pc-q35-10.0"

static void test_no_arg_table(void)
{
    g_assert_true(cpr_cmdline_no_arg("S"));
    g_assert_true(cpr_cmdline_no_arg("nodefaults"));
    g_assert_true(cpr_cmdline_no_arg("enable-kvm"));
    g_assert_true(cpr_cmdline_no_arg("mem-prealloc"));
    g_assert_false(cpr_cmdline_no_arg("m"));
    g_assert_false(cpr_cmdline_no_arg("device"));
    g_assert_false(cpr_cmdline_no_arg("incoming"));
    g_assert_true(cpr_cmdline_ignored("incoming", "defer"));
    g_assert_true(cpr_cmdline_ignored("global", "migration.x-ignore-shared=on"));
    g_assert_true(cpr_cmdline_ignored("global", "driver=migration,property=a,"
                                      "value=b"));
    g_assert_false(cpr_cmdline_ignored("global", "ide-hd.physical_block_size="
                                       "4096"));
    g_assert_false(cpr_cmdline_ignored("device", "virtio-rng-pci"));
}

static void test_same(void)
{
    /* argv[0] (the binary) is not compared; spellings are normalised. */
    expect(diff(args(Q, "-m", "512M", "-smp", "2", "-enable-kvm", NULL), M,
                "host",
                args("/opt/bin/qemu", "--m=512M", "--smp", "2",
                     "--enable-kvm", NULL), M, "host"), "");
    /* Different options in another order: the same VM. */
    expect(diff(args(Q, "-m", "1G", "-smp", "2", NULL), M, "qemu64",
                args(Q, "-smp", "2", "-m", "1G", NULL), M, "qemu64"), "");
    /* Empty lists. */
    expect(diff(args(NULL), "", "", args(NULL), "", ""), "");
}

static void test_changes(void)
{
    expect(diff(args(Q, "-m", "512M", "-smp", "2", NULL), M, "qemu64",
                args(Q, "-m", "1G", "-smp", "2", NULL), M, "qemu64"),
           "~ -m 512M -> 1G");
    expect(diff(args(Q, "-smp", "2", NULL), M, "qemu64",
                args(Q, NULL), M, "qemu64"), "- -smp 2");
    expect(diff(args(Q, NULL), M, "qemu64",
                args(Q, "-device", "virtio-rng-pci", NULL), M, "qemu64"),
           "+ -device virtio-rng-pci");
    expect(diff(args(Q, "-enable-kvm", NULL), M, "qemu64",
                args(Q, NULL), M, "qemu64"), "- -enable-kvm");
    /* Resolved names, changed. */
    expect(diff(args(Q, NULL), M, "qemu64", args(Q, NULL), "pc-q35-10.2",
                "host"),
           "~ machine pc-q35-10.0 -> pc-q35-10.2\n~ cpu qemu64 -> host");
    /* An unknown resolved name on one side. */
    expect(diff(args(Q, NULL), "", "", args(Q, NULL), M, "qemu64"),
           "~ machine (unknown) -> pc-q35-10.0\n~ cpu (unknown) -> qemu64");
    /* A positional argument (a disk image) counts. */
    expect(diff(args(Q, "disk.img", NULL), M, "c", args(Q, "other.img", NULL),
                M, "c"), "~ disk.img -> other.img");
}

/* The machine type and CPU model are compared resolved, the rest of
 * -machine and -cpu as written. */
static void test_machine_cpu(void)
{
    expect(diff(args(Q, "-machine", "q35,accel=kvm", "-cpu", "max", NULL), M,
                "max",
                args(Q, "-M", "pc-q35-10.0,accel=kvm", "-cpu", "max", NULL),
                M, "max"), "");
    expect(diff(args(Q, "-machine", "type=q35,accel=kvm", NULL), M, "c",
                args(Q, "-machine", "q35,accel=tcg", NULL), M, "c"),
           "~ -machine type=q35,accel=kvm -> q35,accel=tcg");
    expect(diff(args(Q, "-cpu", "host,+x2apic", NULL), M, "host",
                args(Q, "-cpu", "host", NULL), M, "host"),
           "~ -cpu host,+x2apic -> host");
    /* Without resolved names, the model is compared as written. */
    expect(diff(args(Q, "-cpu", "host", NULL), "", "",
                args(Q, "-cpu", "max", NULL), "", ""),
           "~ -cpu host -> max");
}

/* Keyed options match by id=; unkeyed ones in order. */
static void test_devices(void)
{
    expect(diff(args(Q, "-device", "virtio-net-pci,id=n0,mac=52:54:00:00:00:01",
                     "-device", "virtio-blk-pci,id=d0,drive=hd", NULL), M, "c",
                args(Q, "-device", "virtio-blk-pci,id=d0,drive=hd",
                     "-device", "virtio-net-pci,id=n0,mac=52:54:00:00:00:02",
                     NULL), M, "c"),
           "~ -device virtio-net-pci,id=n0,mac=52:54:00:00:00:01 -> "
           "virtio-net-pci,id=n0,mac=52:54:00:00:00:02\n"
           "~ order of -device id=n0, d0 -> d0, n0");
    /* One device inserted among unnamed ones: one addition. */
    expect(diff(args(Q, "-device", "a", "-device", "b", "-device", "c", NULL),
                M, "x",
                args(Q, "-device", "a", "-device", "rng", "-device", "b",
                     "-device", "c", NULL), M, "x"),
           "+ -device rng");
    expect(diff(args(Q, "-device", "a", "-device", "b", NULL), M, "x",
                args(Q, "-device", "b", "-device", "a", NULL), M, "x"),
           "~ -device a: order changed");
    expect(diff(args(Q, "-netdev", "user,id=n1", "-drive",
                     "file=a.img,if=none,id=hd", NULL), M, "x",
                args(Q, "-drive", "file=b.img,if=none,id=hd", NULL), M, "x"),
           "- -netdev user,id=n1\n"
           "~ -drive file=a.img,if=none,id=hd -> file=b.img,if=none,id=hd");
    /* ",," is a comma inside a value, not a separator. */
    expect(diff(args(Q, "-device", "x,id=a,,b", NULL), M, "c",
                args(Q, "-device", "x,id=a,,b", NULL), M, "c"), "");
}

static void test_ignored(void)
{
    expect(diff(args(Q, "-m", "1G", "-object",
                     "memory-backend-file,id=ram0,size=1G,share=on,"
                     "mem-path=/dev/shm/a,prealloc=on", NULL), M, "c",
                args(Q, "-incoming", "defer", "-m", "1G", "-S", "-object",
                     "memory-backend-file,id=ram0,size=1G,share=on,"
                     "mem-path=/mnt/pmem/a", "-qmp", "stdio", "-qmp-pretty",
                     "x", "-monitor", "none", "-mon", "chardev=c",
                     "-chardev", "socket,id=c,path=/p", "-pidfile", "/p",
                     "-daemonize", "-D", "/l", "-d", "int", "-trace", "t*",
                     "-msg", "timestamp=on", "-name", "vm", "-runas", "u",
                     "-run-with", "user=u", "-chroot", "/", "-sandbox", "on",
                     "-display", "none", "-vnc", ":1", "-spice", "port=5",
                     "-qtest", "unix:/q", "-qtest-log", "/dev/null", "-L",
                     "/usr/share", "-mem-prealloc",
                     "-global", "migration.x-ignore-shared=on", NULL), M, "c"),
           "");
    /* Everything else in -object still counts. */
    expect(diff(args(Q, "-object", "memory-backend-file,id=ram0,size=1G", NULL),
                M, "c",
                args(Q, "-object", "memory-backend-file,id=ram0,size=2G", NULL),
                M, "c"),
           "~ -object memory-backend-file,id=ram0,size=1G -> "
           "memory-backend-file,id=ram0,size=2G");
}

/* -serial, -parallel, -debugcon: the guest sees a port, not where its
 * bytes go on the host; an added, removed or moved port is refused. */
static void test_ports(void)
{
    expect(diff(args(Q, "-serial", "file:/var/log/vm-a.log", "-parallel",
                     "file:/tmp/a", "-debugcon", "file:/tmp/d1", NULL), M,
                "c",
                args(Q, "-serial", "file:/var/log/vm-b.log", "-parallel",
                     "null", "-debugcon", "stdio", NULL), M, "c"), "");
    expect(diff(args(Q, "-serial", "mon:stdio", "-serial", "pty", NULL), M,
                "c",
                args(Q, "-serial", "unix:/run/s0,server=on", "--serial=vc",
                     NULL), M, "c"), "");
    expect(diff(args(Q, "-serial", "file:/var/log/vm-a.log", NULL), M, "c",
                args(Q, NULL), M, "c"),
           "- -serial file:/var/log/vm-a.log");
    expect(diff(args(Q, "-serial", "stdio", NULL), M, "c",
                args(Q, "-serial", "stdio", "-serial", "file:b", NULL), M,
                "c"), "+ -serial file:b");
    /* "none" keeps a port's index empty: the second port is ttyS1. */
    expect(diff(args(Q, "-serial", "none", "-serial", "file:a", NULL), M, "c",
                args(Q, "-serial", "file:a", "-serial", "none", NULL), M,
                "c"),
           "~ -serial none: order changed");
    expect(diff(args(Q, "-parallel", "none", NULL), M, "c",
                args(Q, "-parallel", "file:/tmp/p", NULL), M, "c"),
           "~ -parallel none -> file:/tmp/p");
    expect(diff(args(Q, "-debugcon", "file:/tmp/d", NULL), M, "c",
                args(Q, "-serial", "file:/tmp/d", NULL), M, "c"),
           "- -debugcon file:/tmp/d\n+ -serial file:/tmp/d");
}

/* Long lists: beyond the comparison table, compared position by
 * position (still right for equal lists and single changes). */
static void test_long(void)
{
    GString *a = g_string_new(NULL), *b;
    char *d;

    g_string_append_len(a, Q, sizeof(Q));
    for (int i = 0; i < 3000; i++) {
        char dev[32];

        snprintf(dev, sizeof(dev), "dev%d", i);
        g_string_append_len(a, "-device", 8);
        g_string_append_len(a, dev, (gssize)strlen(dev) + 1);
    }
    b = g_string_new_len(a->str, (gssize)a->len);
    d = diff(a, M, "c", b, M, "c");
    g_assert_cmpstr(d, ==, "");
    g_free(d);
}

/* Only a destination that preloads the transport prepares at load. */
static void test_preloads_incoming(void)
{
    static const char dest[] =
        "qemu\0-global\0migration.x-preload-transports=pmem\0"
        "-incoming\0defer";
    static const char other[] =
        "qemu\0-global\0migration.x-preload-transports=exec,pmem\0"
        "--incoming\0defer";
    static const char source[] =
        "qemu\0-global\0migration.x-preload-transports=pmem";
    static const char not_preloaded[] = "qemu\0-incoming\0defer";

    cpr_cmdline_set_for_tests(dest, sizeof(dest));
    g_assert_true(cpr_cmdline_preloads_incoming("pmem"));
    cpr_cmdline_set_for_tests(other, sizeof(other));
    g_assert_true(cpr_cmdline_preloads_incoming("pmem"));
    g_assert_false(cpr_cmdline_preloads_incoming("rdma"));
    cpr_cmdline_set_for_tests(source, sizeof(source));
    g_assert_false(cpr_cmdline_preloads_incoming("pmem"));
    cpr_cmdline_set_for_tests(not_preloaded, sizeof(not_preloaded));
    g_assert_false(cpr_cmdline_preloads_incoming("pmem"));
    cpr_cmdline_set_for_tests(NULL, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/no-arg-table", test_no_arg_table);
    g_test_add_func("/cmdline/preloads-incoming", test_preloads_incoming);
    g_test_add_func("/cmdline/same", test_same);
    g_test_add_func("/cmdline/changes", test_changes);
    g_test_add_func("/cmdline/machine-cpu", test_machine_cpu);
    g_test_add_func("/cmdline/devices", test_devices);
    g_test_add_func("/cmdline/ignored", test_ignored);
    g_test_add_func("/cmdline/ports", test_ports);
    g_test_add_func("/cmdline/long", test_long);
    return g_test_run();
}
