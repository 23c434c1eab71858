/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VM description's own helpers: names, freeing, counting; encoding
 * and decoding are vmdesc-encode.c and vmdesc-decode.c.
 */
#include "vmdesc.h"

#include <stdlib.h>

const char *cpr_media_name(uint32_t media)
{
    switch (media) {
    case CPR_MEDIA_PMEM: return "pmem";
    case CPR_MEDIA_PAGE_CACHE: return "page-cache";
    case CPR_MEDIA_VOLATILE: return "volatile";
    default: return "unknown";
    }
}

void cpr_vmdesc_free(CprVmdesc *d)
{
    if (!d) {
        return;
    }
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        free(d->blocks[i].name);
        free(d->blocks[i].media_detail);
        free(d->blocks[i].file.path);
    }
    free(d->blocks);
    for (uint32_t i = 0; i < d->nr_disks; i++) {
        free(d->disks[i].node);
        free(d->disks[i].filename);
        free(d->disks[i].driver);
    }
    free(d->disks);
    free(d->qemu_version);
    free(d->kernel_release);
    free(d->machine);
    free(d->cpu);
    free(d->argv);
    free(d->image_media_detail);
    free(d);
}

uint32_t cpr_vmdesc_argc(const CprVmdesc *d)
{
    uint32_t n = 0;

    for (size_t i = 0; i < d->argv_len; i++) {
        n += d->argv[i] == 0;
    }
    return n;
}
