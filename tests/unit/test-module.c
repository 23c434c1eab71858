/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The built transport-pmem.so as QEMU sees it: dlopen, symbols, init. */
#include <dlfcn.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/transport-plugin.h"

static void warn(const char *msg)
{
    g_test_message("warning: %s", msg);
}

static void test_module(void)
{
    /* RTLD_NOW: any unresolved symbol fails here, not in QEMU. */
    void *h = dlopen(TRANSPORT_SO, RTLD_NOW | RTLD_LOCAL);
    static const QemuTransportHostInfo host = {
        QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
        "10.0.13", warn,
    };
    static const QemuTransportVm vm = { NULL, 0, "pc-q35-10.0", "qemu64",
                                        sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };
    const QemuTransportOps *ops;
    QemuTransportInitFunc init;
    const uint32_t *version;
    char *err = NULL;

    g_assert_nonnull(h);
    version = dlsym(h, QEMU_TRANSPORT_VERSION_SYMBOL);
    g_assert_nonnull(version);
    g_assert_cmpuint(*version, ==, QEMU_TRANSPORT_PLUGIN_VERSION);
    *(void **)&init = dlsym(h, QEMU_TRANSPORT_INIT_SYMBOL);
    g_assert_nonnull(init);
    g_assert_null(dlsym(h, "cpr_writer_open"));     /* hidden */
    /* XXH3 linked in, hidden: no libxxhash.so to load with the module
     * (~0.1 ms of QEMU's migrate command). */
    g_assert_null(dlsym(h, "XXH3_64bits"));
    ops = init(&host, &err);
    g_assert_null(err);
    g_assert_cmpstr(ops->scheme, ==, "pmem");
    g_assert_nonnull(ops->out_pwritev);
    g_assert_nonnull(ops->in_preadv);
    g_assert_null(ops->in_open("/nonexistent/vm.cpr", &vm, &err));
    g_assert_cmpstr(err, ==,
                    "/nonexistent/vm.cpr: cannot open: No such file or directory");
    free(err);
    dlclose(h);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/module/load", test_module);
    return g_test_run();
}
