/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "guest-kinds.h"
#include "guest.h"
#include "cpr-cycle.h"

#include <string.h>

/* hlt; jmp .-1 at the reset vector: Debian's QEMU has no qtest accel. */
static char *halt_bios(const char *dir, GError **errp)
{
    static const guint8 reset_vector[] = { 0xf4, 0xeb, 0xfd };
    g_autofree guint8 *rom = g_malloc(64 * 1024);
    char *path = g_build_filename(dir, "halt.bin", NULL);

    memset(rom, 0xf4, 64 * 1024);
    memcpy(rom + 64 * 1024 - 16, reset_vector, sizeof(reset_vector));
    if (!g_file_set_contents(path, (const char *)rom, 64 * 1024, errp)) {
        g_free(path);
        return NULL;
    }
    return path;
}

static void add_devices(GPtrArray *a)
{
    static const char *const devs[] = {
        "-netdev", "hubport,id=net0,hubid=0",
        "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
        "-blockdev", "driver=null-co,node-name=disk0,size=67108864",
        "-device", "virtio-blk-pci,drive=disk0",
        NULL,
    };

    for (const char *const *d = devs; *d; d++) {
        g_ptr_array_add(a, g_strdup(*d));
    }
    for (int i = 0; i < 4; i++) {
        g_ptr_array_add(a, g_strdup("-chardev"));
        g_ptr_array_add(a, g_strdup_printf("null,id=ser%d", i));
        g_ptr_array_add(a, g_strdup("-device"));
        g_ptr_array_add(a, g_strdup_printf("isa-serial,chardev=ser%d", i));
    }
}

static GStrv qtest_guest(const GuestSpec *g, const char *dir, GError **errp)
{
    g_autofree char *bios = halt_bios(dir, errp);
    GPtrArray *a;

    if (!bios) {
        return NULL;
    }
    a = g_ptr_array_new();
    for (const char *const *s = (const char *const[]){
             "-nodefaults", "-display", "none", "-accel", "tcg", NULL };
         *s; s++) {
        g_ptr_array_add(a, g_strdup(*s));
    }
    g_ptr_array_add(a, g_strdup("-bios"));
    g_ptr_array_add(a, g_strdup(bios));
    g_ptr_array_add(a, g_strdup("-m"));
    g_ptr_array_add(a, g_strdup(g->ram_size));
    if (g->shared_ram) {
        g_ptr_array_add(a, g_strdup("-object"));
        g_ptr_array_add(a, g_strdup_printf(
            "memory-backend-file,id=ram0,size=%s,mem-path=%s/ram,share=on",
            g->ram_size, dir));
        g_ptr_array_add(a, g_strdup("-machine"));
        g_ptr_array_add(a, g_strdup("q35,memory-backend=ram0"));
    } else {
        g_ptr_array_add(a, g_strdup("-machine"));
        g_ptr_array_add(a, g_strdup("q35"));
    }
    if (g->many_devices) {
        add_devices(a);
    }
    for (const char *const *t = cpr_trace_args; *t; t++) {
        g_ptr_array_add(a, g_strdup(*t));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

static GStrv linux_guest(const char *qemu, const char *dir, GError **errp)
{
    g_autofree char *ram = g_build_filename(dir, "ram", NULL);
    g_autofree char *serial = g_build_filename(dir, "serial.log", NULL);
    g_auto(GStrv) base = guest_args(guest_accel(qemu), ram, serial, errp);
    GPtrArray *a;

    if (!base) {
        return NULL;
    }
    a = g_ptr_array_new();
    for (char **s = base; *s; s++) {
        g_ptr_array_add(a, g_strdup(*s));
    }
    for (const char *const *t = cpr_trace_args; *t; t++) {
        g_ptr_array_add(a, g_strdup(*t));
    }
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}

GStrv guest_kind_args(const GuestSpec *g, const char *qemu, const char *dir,
                      GError **errp)
{
    return g->kind == GUEST_LINUX ? linux_guest(qemu, dir, errp)
                                  : qtest_guest(g, dir, errp);
}

const char *guest_kind_name(GuestKind kind)
{
    return kind == GUEST_LINUX ? "linux" : "qtest-devices";
}
