/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem check --for=reboot and --for=kexec: whether an image that
 * loads, and the guest RAM it recorded, survive a host reboot or a kexec.
 */
#include "tool.h"
#include "clean-text.h"
#include "media.h"
#include "reader.h"
#include "tool-open.h"
#include "vmdesc.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Whether RAM block @k is on kexec-only (e820) pmem: as recorded, or, for
 * a record saved before that was told apart, its file as it is now (if
 * it is still the one recorded).
 */
static bool block_kexec_only(const CprVmdescBlock *k)
{
    struct stat st;

    if (cpr_media_kexec_only(k->media_detail)) {
        return true;
    }
    return k->has_file && k->file.path && *k->file.path == '/' &&
           stat(k->file.path, &st) == 0 && (uint64_t)st.st_dev == k->file.dev &&
           (uint64_t)st.st_ino == k->file.ino &&
           cpr_pmem_region(&st, "/sys", NULL, 0) == CPR_REGION_KEXEC_ONLY;
}

/*
 * check --for=reboot and --for=kexec: the image loads, and it and every
 * RAM block it recorded are on media that outlive the kernel -- for a
 * reboot, not on kexec-only (e820) pmem either.  Reasons on stderr,
 * notes on stdout.
 */
int tool_check_reboot(const char *path, CprReader *r, bool kexec)
{
    const CprVmdesc *d = cpr_reader_vmdesc(r);
    const char *down = kexec ? "a kexec" : "a host reboot";
    char detail[CPR_VMDESC_MAX_DETAIL * 2];
    int media = tool_image_media(path, detail, sizeof(detail));
    bool lost = false, sync = false, e820 = false;

    /* A committed image is durable on a disk filesystem too: the
     * transport synced it. */
    if (media == CPR_MEDIA_VOLATILE) {
        fprintf(stderr, "%s: would not survive %s: the image is "
                "on volatile memory (%s)\n", path, down, detail);
        lost = true;
    } else if (cpr_media_kexec_only(detail)) {
        e820 = true;
        if (!kexec) {
            fprintf(stderr, "%s: would not survive a host reboot, only a "
                    "kexec: the image is on DRAM-backed pmem (an e820 "
                    "region, memmap=)\n", path);
            lost = true;
        }
    }
    if (!d) {
        printf("%s: note: the image (record format %u) did not record its "
               "guest RAM: whether that survives is not known\n", path,
               cpr_reader_record(r)->version);
    }
    for (uint32_t i = 0; d && i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];
        char *name = tool_clean(k->name), *file = tool_clean(
            k->has_file ? k->file.path : "");
        char *det = tool_clean(k->media_detail);

        if (k->media == CPR_MEDIA_VOLATILE) {
            fprintf(stderr, "%s: would not survive %s: the guest "
                    "RAM of block %s%s%s is on volatile memory (%s)\n", path,
                    down, name, *file ? " in " : "", file, det);
            lost = true;
        } else if (block_kexec_only(k)) {
            e820 = true;
            if (!kexec) {
                fprintf(stderr, "%s: would not survive a host reboot, only "
                        "a kexec: the guest RAM of block %s%s%s is on "
                        "DRAM-backed pmem (an e820 region, memmap=)\n", path,
                        name, *file ? " in " : "", file);
                lost = true;
            }
        }
        if (k->media == CPR_MEDIA_PAGE_CACHE) {
            sync = true;
        }
        g_free(name);
        g_free(file);
        g_free(det);
    }
    if (lost) {
        return TOOL_REFUSED;
    }
    printf("%s: survives %s (image: %s%s)\n", path, down,
           cpr_media_name((uint32_t)media), d ? "" : "; RAM not recorded");
    if (e820) {
        printf("%s: note: on DRAM-backed pmem (e820): a kexec into a kernel "
               "with the same memmap= keeps it, a cold reboot or a power "
               "loss does not\n", path);
    }
    if (sync) {
        printf("%s: note: guest RAM is in the page cache of a disk "
               "filesystem: it survives once written back, so run sync (or "
               "syncfs) after QEMU quits and before the reboot\n", path);
    }
    return TOOL_OK;
}
