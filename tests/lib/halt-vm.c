/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "halt-vm.h"
#include "test-env.h"

#include <string.h>

#define ROM_SIZE (64 * 1024)

/*
 * Debian's QEMU has no qtest accelerator, so the vCPU really runs under
 * TCG: give it a firmware that only halts, leaving RAM and CMOS to us.
 */
static char *write_halt_bios(const char *dir)
{
    static const guint8 reset_vector[] = { 0xf4, 0xeb, 0xfd };  /* hlt; jmp .-1 */
    g_autofree guint8 *rom = g_malloc(ROM_SIZE);
    char *path = g_build_filename(dir, "halt.bin", NULL);
    GError *err = NULL;

    memset(rom, 0xf4, ROM_SIZE);
    memcpy(rom + ROM_SIZE - 16, reset_vector, sizeof(reset_vector));
    if (!g_file_set_contents(path, (const char *)rom, ROM_SIZE, &err)) {
        g_error("%s", err->message);
    }
    return path;
}

GStrv halt_vm_args(const char *dir, const char *ram_name,
                   const char *ram_size)
{
    g_autofree char *bios = write_halt_bios(dir);
    g_autofree char *backend = g_strdup_printf(
        "memory-backend-file,id=ram0,size=%s,mem-path=%s/%s,share=on",
        ram_size, dir, ram_name);
    const char *args[] = {
        "-nodefaults", "-display", "none", "-accel", "tcg", "-bios", bios,
        "-m", ram_size, "-object", backend,
        "-machine", "q35,memory-backend=ram0", NULL,
    };

    return g_strdupv((char **)args);
}

QemuProc *halt_vm_start(const char *dir, GStrv args, const char *name,
                        const char *incoming, GError **errp)
{
    QemuProcOpts opts = { .binary = test_env_qemu(), .dir = dir,
                          .name = name, .qtest = TRUE,
                          .args = (const char *const *)args };

    return incoming ? qemu_proc_start_incoming(&opts, incoming, errp)
                    : qemu_proc_start(&opts, errp);
}

QemuProc *halt_vm_start_with_plugin(const char *dir, GStrv args,
                                    const char *name, const char *incoming,
                                    const char *plugin, char **copy,
                                    GError **errp)
{
    g_autofree char *plugins = g_build_filename(dir, "plugins", NULL);
    g_autofree char *base = g_path_get_basename(plugin);
    g_autofree char *saved = g_strdup(g_getenv("QEMU_TRANSPORT_PLUGIN_DIR"));
    g_autofree char *data = NULL;
    QemuProc *p;
    gsize len;

    *copy = g_build_filename(plugins, base, NULL);
    if (g_mkdir_with_parents(plugins, 0700) < 0 ||
        !g_file_get_contents(plugin, &data, &len, errp) ||
        !g_file_set_contents(*copy, data, len, errp)) {
        if (errp && !*errp) {
            g_set_error(errp, G_IO_ERROR, G_IO_ERROR_FAILED,
                        "cannot create %s", plugins);
        }
        return NULL;
    }
    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", plugins, TRUE);
    p = halt_vm_start(dir, args, name, incoming, errp);
    if (saved) {
        g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", saved, TRUE);
    } else {
        g_unsetenv("QEMU_TRANSPORT_PLUGIN_DIR");
    }
    return p;
}

void halt_vm_cmos_write(Qtest *qt, guint8 reg, guint8 val)
{
    GError *err = NULL;

    if (!qtest_outb(qt, 0x70, reg, &err) || !qtest_outb(qt, 0x71, val, &err)) {
        g_error("CMOS 0x%02x: %s", reg, err->message);
    }
}

guint8 halt_vm_cmos_read(Qtest *qt, guint8 reg)
{
    GError *err = NULL;
    guint8 val = 0;

    if (!qtest_outb(qt, 0x70, reg, &err) || !qtest_inb(qt, 0x71, &val, &err)) {
        g_error("CMOS 0x%02x: %s", reg, err->message);
    }
    return val;
}
