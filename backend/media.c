/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "media.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef ZFS_SUPER_MAGIC
#define ZFS_SUPER_MAGIC 0x2fc12fc1
#endif

static const struct {
    unsigned long magic;
    const char *name;
    bool lost;          /* its contents do not outlive the kernel */
} filesystems[] = {
    { TMPFS_MAGIC, "tmpfs", true },
    { RAMFS_MAGIC, "ramfs", true },
    { HUGETLBFS_MAGIC, "hugetlbfs", true },
    { EXT4_SUPER_MAGIC, "ext4", false },
    { XFS_SUPER_MAGIC, "xfs", false },
    { BTRFS_SUPER_MAGIC, "btrfs", false },
    { F2FS_SUPER_MAGIC, "f2fs", false },
    { ZFS_SUPER_MAGIC, "zfs", false },
    { NFS_SUPER_MAGIC, "nfs", false },
    { FUSE_SUPER_MAGIC, "fuse", false },
    { OVERLAYFS_SUPER_MAGIC, "overlayfs", false },
    { V9FS_MAGIC, "9p", false },
};

static void say(char *detail, size_t size, const char *fmt, const char *a,
                const char *b)
{
    if (size) {
        snprintf(detail, size, fmt, a, b);
    }
}

/* Device DAX (/dev/daxX.Y): a character device of the "dax" class. */
static bool is_devdax(const struct stat *st)
{
    char link[128], target[256];
    ssize_t n;

    snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem",
             major(st->st_rdev), minor(st->st_rdev));
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0) {
        return false;
    }
    target[n] = 0;
    return strcmp(strrchr(target, '/') ? strrchr(target, '/') + 1 : target,
                  "dax") == 0;
}

static bool is_dax(int fd)
{
#ifdef STATX_ATTR_DAX
    struct statx stx;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0) {
        return (stx.stx_attributes_mask & STATX_ATTR_DAX) &&
               (stx.stx_attributes & STATX_ATTR_DAX);
    }
#endif
    (void)fd;
    return false;
}

/* Whether the filesystem maps @fd with MAP_SYNC (what libpmem's real,
 * unforced is_pmem means for a file). */
static bool map_sync_works(int fd)
{
#if defined(MAP_SYNC) && defined(MAP_SHARED_VALIDATE)
    void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC,
                   fd, 0);

    if (p != MAP_FAILED) {
        munmap(p, 4096);
        return true;
    }
#endif
    (void)fd;
    return false;
}

/*
 * @pmem: NULL for an image (probe MAP_SYNC), else whether QEMU maps the
 * RAM block with MAP_SYNC.
 */
static CprMedia classify_fs(int fd, const bool *pmem, char *detail,
                            size_t size)
{
    const char *fs = NULL;
    char unknown[32];
    struct statfs sfs;
    struct stat st;
    bool sync;

    if (fstat(fd, &st) < 0) {
        say(detail, size, "%s%s", "cannot stat", "");
        return CPR_MEDIA_VOLATILE;
    }
    if (S_ISCHR(st.st_mode)) {
        if (is_devdax(&st)) {
            say(detail, size, "%s%s", "device DAX", "");
            return CPR_MEDIA_PMEM;
        }
        say(detail, size, "%s%s", "character device", "");
        return CPR_MEDIA_VOLATILE;
    }
    if (S_ISBLK(st.st_mode)) {
        say(detail, size, "%s%s", "block device", "");
        return CPR_MEDIA_PAGE_CACHE;
    }
    if (fstatfs(fd, &sfs) == 0) {
        for (size_t i = 0; i < sizeof(filesystems) / sizeof(*filesystems);
             i++) {
            if ((unsigned long)sfs.f_type == filesystems[i].magic) {
                if (filesystems[i].lost) {
                    say(detail, size, "%s%s", filesystems[i].name, "");
                    return CPR_MEDIA_VOLATILE;
                }
                fs = filesystems[i].name;
            }
        }
        if (!fs) {
            snprintf(unknown, sizeof(unknown), "filesystem 0x%lx",
                     (unsigned long)sfs.f_type);
            fs = unknown;
        }
    } else {
        fs = "unknown filesystem";
    }
    if (!S_ISREG(st.st_mode)) {
        say(detail, size, "%s%s", "not a regular file", "");
        return CPR_MEDIA_VOLATILE;
    }
    if (st.st_nlink == 0) {
        say(detail, size, "%s%s", fs, ", unlinked file");
        return CPR_MEDIA_VOLATILE;
    }
    if (!is_dax(fd)) {
        say(detail, size, "%s%s", fs, "");
        return CPR_MEDIA_PAGE_CACHE;
    }
    sync = pmem ? *pmem : map_sync_works(fd);
    if (!sync) {
        say(detail, size, "%s%s", fs, ", DAX without MAP_SYNC");
        return CPR_MEDIA_PAGE_CACHE;
    }
    say(detail, size, "%s%s", fs, ", DAX, MAP_SYNC");
    return CPR_MEDIA_PMEM;
}

/* Read the first line of @path into @buf ("" if it cannot be read). */
static void read_line(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);

    if (fd >= 0) {
        close(fd);
    }
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
}

CprPmemRegion cpr_pmem_region(const struct stat *st, const char *sysfs,
                              char *provider, size_t size)
{
    bool node = S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode);
    dev_t dev = node ? st->st_rdev : st->st_dev;
    CprPmemRegion region = CPR_REGION_NONE;
    char link[PATH_MAX], file[PATH_MAX + 16], name[64], *real, *slash;

    if (size) {
        *provider = 0;
    }
    /* /sys/dev/block/M:m -> ../../devices/.../ndbusN/regionN/.../pmemN */
    snprintf(link, sizeof(link), "%s/dev/%s/%u:%u", sysfs,
             S_ISCHR(st->st_mode) ? "char" : "block", major(dev), minor(dev));
    real = realpath(link, NULL);
    if (!real) {
        return CPR_REGION_NONE;
    }
    while ((slash = strrchr(real, '/')) && slash > real) {
        if (strncmp(slash + 1, "ndbus", 5) == 0 &&
            isdigit((unsigned char)slash[6])) {
            snprintf(file, sizeof(file), "%s/provider", real);
            read_line(file, name, sizeof(name));
            if (size) {
                snprintf(provider, size, "%s", name);
            }
            region = strcmp(name, "e820") == 0 ? CPR_REGION_KEXEC_ONLY
                                               : CPR_REGION_DURABLE;
            break;
        }
        *slash = 0;
    }
    free(real);
    return region;
}

bool cpr_media_kexec_only(const char *detail)
{
    return detail && strncmp(detail, CPR_MEDIA_KEXEC_ONLY,
                             strlen(CPR_MEDIA_KEXEC_ONLY)) == 0;
}

bool cpr_media_is_tmpfs(const char *detail)
{
    return detail && strcmp(detail, "tmpfs") == 0;
}

bool cpr_media_in_memory(uint32_t media, const char *detail)
{
    if (media == CPR_MEDIA_PMEM) {
        return true;
    }
    if (media != CPR_MEDIA_VOLATILE || !detail) {
        return false;
    }
    for (size_t i = 0; i < sizeof(filesystems) / sizeof(*filesystems); i++) {
        if (filesystems[i].lost && strcmp(detail, filesystems[i].name) == 0) {
            return true;
        }
    }
    return false;
}

/* The class, and a detail that leads with kexec-only pmem when so. */
static CprMedia classify(int fd, const bool *pmem, char *detail, size_t size)
{
    CprMedia m = classify_fs(fd, pmem, detail, size);
    char rest[CPR_VMDESC_MAX_DETAIL * 2];
    struct stat st;

    if (m == CPR_MEDIA_VOLATILE || fstat(fd, &st) < 0 ||
        cpr_pmem_region(&st, "/sys", NULL, 0) != CPR_REGION_KEXEC_ONLY) {
        return m;
    }
    if (size) {
        snprintf(rest, sizeof(rest), "%s", detail);
        snprintf(detail, size, "%s; %s", CPR_MEDIA_KEXEC_ONLY, rest);
    }
    return m;
}

CprMedia cpr_media_of_file(int fd, char *detail, size_t size)
{
    return classify(fd, NULL, detail, size);
}

CprMedia cpr_media_of_ram(int fd, bool pmem_flag, char *detail, size_t size)
{
    if (fd < 0) {
        say(detail, size, "%s%s", "anonymous memory", "");
        return CPR_MEDIA_VOLATILE;
    }
    return classify(fd, &pmem_flag, detail, size);
}
