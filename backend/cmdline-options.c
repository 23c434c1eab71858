/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's options as the command-line comparison sees them: which take
 * no argument, which may differ between the two ends of a cpr-reboot,
 * which are matched by id or by order; and QemuOpts' element lists.
 */
#include "cmdline-internal.h"

/*
 * QEMU's options that take no argument: the DEF()s without HAS_ARG in
 * qemu-options.hx of QEMU 10.0.13 (the source scripts/test.sh builds);
 * every other option takes one, as in QEMU's lookup_opt().  Newer QEMUs
 * may add options: an unknown option is taken to have an argument,
 * which only matters if it has none and is followed by another option.
 */
static const char *const no_arg_options[] = {
    "help", "version", "mem-prealloc", "snapshot", "usb", "nographic",
    "full-screen", "win2k-hack", "no-fd-bootchk", "preconfig", "S", "s",
    "enable-kvm", "xen-attach", "xen-domid-restrict", "no-reboot",
    "no-shutdown", "daemonize", "only-migratable", "nodefaults",
    "semihosting", "old-param", "no-user-config", "enable-sync-profile",
    "perfmap", "jitdump",
};

/*
 * Options that may differ between the QEMU that saved a VM and the one
 * restoring it, because the guest cannot see them: where the monitors,
 * the migration and the logs go, how the process runs, how the display
 * is shown.  BINDING.md explains each.  Besides these: -global
 * migration.* (migration parameters are set per side), and, inside
 * -object, the mem-path= and prealloc*= properties of memory backends
 * (the RAM binding checks the file itself).
 */
static const char *const ignored_options[] = {
    "incoming", "qmp", "qmp-pretty", "monitor", "mon", "chardev",
    "pidfile", "daemonize", "D", "d", "trace", "msg", "name", "runas",
    "run-with", "chroot", "sandbox", "display", "vnc", "spice", "S",
    "qtest", "qtest-log", "L", "mem-prealloc",
};

/*
 * Options that create a guest device from a host character backend
 * (QEMU's vl.c: serial_parse, parallel_parse, debugcon_parse): the
 * device is compared (that there is one, and where among the others of
 * its option), not the backend ("-serial file:a.log" and "-serial
 * file:b.log" are the same port), as -chardev is ignored.
 */
static const char *const port_options[] = { "serial", "parallel", "debugcon" };

/* Matched by id= where they have one. */
static const char *const keyed_options[] = {
    "device", "object", "drive", "netdev",
};

/* Whose order among themselves changes what the guest sees (PCI slots,
 * drive indexes), even when each is matched by id. */
static const char *const ordered_options[] = { "device", "drive" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool in(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        /* The first byte first: called per unit, for several lists. */
        if (list[i][0] == name[0] && strcmp(list[i], name) == 0) {
            return true;
        }
    }
    return false;
}

bool cpr_cmdline_no_arg(const char *name)
{
    return in(no_arg_options, N(no_arg_options), name);
}

void cpr_cmdline_each_elem(const char *value, ElemFn fn, void *opaque)
{
    size_t start = 0, i = 0, index = 0;

    for (;;) {
        if (value[i] == ',' && value[i + 1] == ',') {
            i += 2;
            continue;
        }
        if (value[i] == ',' || value[i] == 0) {
            fn(value + start, i - start, index++, opaque);
            if (value[i] == 0) {
                return;
            }
            start = i + 1;
        }
        i++;
    }
}

bool cpr_cmdline_elem_is(const char *elem, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(elem, prefix, n) == 0;
}

static void find_migration(const char *elem, size_t len, size_t index,
                           void *opaque)
{
    (void)index;
    if (len == strlen("driver=migration") &&
        cpr_cmdline_elem_is(elem, len, "driver=migration")) {
        *(bool *)opaque = true;
    }
}

bool cpr_cmdline_ignored(const char *name, const char *value)
{
    bool migration = false;

    if (in(ignored_options, N(ignored_options), name)) {
        return true;
    }
    if (strcmp(name, "global") == 0 && value) {
        if (strncmp(value, "migration.", 10) == 0) {
            return true;
        }
        cpr_cmdline_each_elem(value, find_migration, &migration);
        return migration;
    }
    return false;
}


bool cpr_cmdline_is_port(const char *name)
{
    return in(port_options, N(port_options), name);
}

bool cpr_cmdline_is_keyed(const char *name)
{
    return in(keyed_options, N(keyed_options), name);
}

bool cpr_cmdline_is_ordered(const char *name)
{
    return in(ordered_options, N(ordered_options), name);
}
