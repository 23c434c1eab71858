/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "media.h"

#include <fcntl.h>
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
static CprMedia classify(int fd, const bool *pmem, char *detail, size_t size)
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
