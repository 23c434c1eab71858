/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which nd region a file's memory is (issue 17): pmem of an e820 region
 * (memmap=, DRAM) survives only a kexec, pmem of an NFIT region a power
 * loss too.  cpr_pmem_region() walks a fake sysfs tree made here, laid
 * out as Linux 6.1 lays out /sys/dev and the nd bus.
 */
#include "media.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/sysmacros.h>

static char *root;

static void mkdirs(const char *rel)
{
    g_autofree char *p = g_build_filename(root, rel, NULL);

    g_assert_cmpint(g_mkdir_with_parents(p, 0755), ==, 0);
}

static void put(const char *rel, const char *text)
{
    g_autofree char *p = g_build_filename(root, rel, NULL);

    g_assert_true(g_file_set_contents(p, text, -1, NULL));
}

static void link_dev(const char *kind, const char *mm, const char *target)
{
    g_autofree char *p = g_strdup_printf("%s/dev/%s/%s", root, kind, mm);
    g_autofree char *t = g_strdup_printf("../../devices/%s", target);

    g_assert_cmpint(symlink(t, p), ==, 0);
}

#define E820 "platform/e820_pmem/ndbus0"
#define NFIT "LNXSYSTM:00/LNXSYBUS:00/ACPI0012:00/ndbus1"

static void make_tree(void)
{
    root = g_dir_make_tmp("media-region-XXXXXX", NULL);
    g_assert_nonnull(root);
    mkdirs("dev/block");
    mkdirs("dev/char");
    mkdirs("devices/" E820 "/region0/pfn0.0/block/pmem0/pmem0p1");
    mkdirs("devices/" E820 "/region0/dax0.0/dax0.0");
    mkdirs("devices/" NFIT "/region1/namespace1.0/block/pmem1");
    mkdirs("devices/" NFIT "/region1/dax1.0/dax1.0");
    mkdirs("devices/virtual/block/loop0");
    mkdirs("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
    put("devices/" E820 "/provider", "e820\n");
    put("devices/" NFIT "/provider", "ACPI.NFIT\n");
    link_dev("block", "259:0", E820 "/region0/pfn0.0/block/pmem0");
    link_dev("block", "259:1", E820 "/region0/pfn0.0/block/pmem0/pmem0p1");
    link_dev("block", "259:2", NFIT "/region1/namespace1.0/block/pmem1");
    link_dev("block", "7:0", "virtual/block/loop0");
    link_dev("block", "254:0", "pci0000:00/0000:00:04.0/virtio1/block/vda");
    link_dev("char", "252:0", E820 "/region0/dax0.0/dax0.0");
    link_dev("char", "252:1", NFIT "/region1/dax1.0/dax1.0");
}

static CprPmemRegion region(mode_t type, unsigned maj, unsigned min,
                            char *provider, size_t size)
{
    struct stat st = { .st_mode = type | 0600 };

    if (S_ISREG(type)) {
        st.st_dev = makedev(maj, min);
        st.st_rdev = makedev(1, 1);     /* must not be looked at */
    } else {
        st.st_dev = makedev(0, 5);      /* devtmpfs: must not be looked at */
        st.st_rdev = makedev(maj, min);
    }
    return cpr_pmem_region(&st, root, provider, size);
}

/* A file on fs-dax over memmap= pmem, or on a partition of it. */
static void test_file_on_e820(void)
{
    char prov[32];

    g_assert_cmpint(region(S_IFREG, 259, 0, prov, sizeof(prov)), ==,
                    CPR_REGION_KEXEC_ONLY);
    g_assert_cmpstr(prov, ==, "e820");
    g_assert_cmpint(region(S_IFREG, 259, 1, prov, sizeof(prov)), ==,
                    CPR_REGION_KEXEC_ONLY);
}

static void test_file_on_nfit(void)
{
    char prov[32];

    g_assert_cmpint(region(S_IFREG, 259, 2, prov, sizeof(prov)), ==,
                    CPR_REGION_DURABLE);
    g_assert_cmpstr(prov, ==, "ACPI.NFIT");
}

/* Device DAX and block device nodes: their own device, not devtmpfs's. */
static void test_device_nodes(void)
{
    char prov[32];

    g_assert_cmpint(region(S_IFCHR, 252, 0, prov, sizeof(prov)), ==,
                    CPR_REGION_KEXEC_ONLY);
    g_assert_cmpint(region(S_IFCHR, 252, 1, prov, sizeof(prov)), ==,
                    CPR_REGION_DURABLE);
    g_assert_cmpint(region(S_IFBLK, 259, 0, NULL, 0), ==,
                    CPR_REGION_KEXEC_ONLY);
    g_assert_cmpint(region(S_IFBLK, 259, 2, NULL, 0), ==,
                    CPR_REGION_DURABLE);
}

/* Not pmem: a disk, a loop device, an anonymous device (tmpfs, btrfs),
 * a device sysfs does not know. */
static void test_not_pmem(void)
{
    char prov[32] = "stale";

    g_assert_cmpint(region(S_IFREG, 254, 0, prov, sizeof(prov)), ==,
                    CPR_REGION_NONE);
    g_assert_cmpstr(prov, ==, "");
    g_assert_cmpint(region(S_IFREG, 7, 0, NULL, 0), ==, CPR_REGION_NONE);
    g_assert_cmpint(region(S_IFREG, 0, 45, NULL, 0), ==, CPR_REGION_NONE);
    g_assert_cmpint(region(S_IFCHR, 1, 3, NULL, 0), ==, CPR_REGION_NONE);
}

/* The recorded detail's marker, as the save writes it. */
static void test_detail_marker(void)
{
    g_assert_true(cpr_media_kexec_only(CPR_MEDIA_KEXEC_ONLY
                                       "; ext4, DAX, MAP_SYNC"));
    g_assert_false(cpr_media_kexec_only("ext4, DAX, MAP_SYNC"));
    g_assert_false(cpr_media_kexec_only("device DAX"));
    g_assert_false(cpr_media_kexec_only(""));
    g_assert_false(cpr_media_kexec_only(NULL));
}

/* The real /sys: this build host's files are on no e820 region. */
static void test_real_sys(void)
{
    struct stat st;

    g_assert_cmpint(stat(".", &st), ==, 0);
    g_test_message("cwd's region on this host: %d",
                   cpr_pmem_region(&st, "/sys", NULL, 0));
}

static void rmtree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;
    struct stat st;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            rmtree(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(path);
}

int main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    make_tree();
    g_test_add_func("/media-region/file-on-e820", test_file_on_e820);
    g_test_add_func("/media-region/file-on-nfit", test_file_on_nfit);
    g_test_add_func("/media-region/device-nodes", test_device_nodes);
    g_test_add_func("/media-region/not-pmem", test_not_pmem);
    g_test_add_func("/media-region/detail-marker", test_detail_marker);
    g_test_add_func("/media-region/real-sys", test_real_sys);
    rc = g_test_run();
    rmtree(root);
    g_free(root);
    return rc;
}
