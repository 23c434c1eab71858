/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The binding check beside the payload's verification (binding-early.h). */
#include "binding-early.h"
#include "binding-internal.h"
#include "room.h"
#include "vmdesc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct CprEarlyBinding {
    CprTask task;
    pthread_t caller;           /* in_open's thread */
    const char *path;
    CprRecord rec;
    const CprVm *vm;
    CprHost collect;            /* the caller's, warnings kept in @warnings */
    uint8_t *bytes;             /* the description as read ahead */
    size_t len;
    bool checked;               /* decoded and checked: @ret, @err */
    int ret;
    char *err;
    CprLines warnings;
};

static atomic_uint helper_runs;

/* collect -- a warning of the check, for the caller to give to QEMU */
static void collect(void *opaque, const char *msg)
{
    CprEarlyBinding *e = opaque;

    cpr_lines_add(&e->warnings, "%s", msg);
}

/* early_run -- the task: decode the description read ahead, check it */
static void early_run(void *arg)
{
    CprEarlyBinding *e = arg;
    CprVmdesc *d = NULL;
    const char *why;

    /* Undecodable: the verified bytes will say why (or be others). */
    if (cpr_vmdesc_decode(e->bytes, e->len, &d, &why) != CPR_VMDESC_OK) {
        return;
    }
    e->ret = cpr_binding_verify(e->path, &e->rec, d, &e->collect, e->vm,
                                &e->err);
    e->checked = true;
    cpr_vmdesc_free(d);
    if (!pthread_equal(pthread_self(), e->caller)) {
        atomic_fetch_add(&helper_runs, 1);
    }
}

CprEarlyBinding *cpr_binding_early_start(const char *path, const CprImage *f,
                                         const CprRecord *rec,
                                         const CprHost *host,
                                         const CprVm *vm)
{
    uint64_t len = rec->version >= 2 ? cpr_record_vmdesc_len(rec) : 0;
    CprEarlyBinding *e;

    if (!len || !(e = calloc(1, sizeof(*e)))) {
        return NULL;
    }
    e->bytes = malloc(len);
    if (!e->bytes || cpr_image_pread(f, e->bytes, len, rec->payload_off +
                                     rec->stream_len) != (ssize_t)len) {
        free(e->bytes);
        free(e);
        return NULL;
    }
    e->len = len;
    e->path = path;
    e->rec = *rec;
    e->vm = vm;
    e->collect = (CprHost){ host ? host->qemu_version : NULL, collect, e };
    e->caller = pthread_self();
    e->task = (CprTask){ .fn = early_run, .arg = e };
    cpr_room_post(&e->task);
    return e;
}

/* early_free -- @e and what it holds */
static void early_free(CprEarlyBinding *e)
{
    free(e->bytes);
    free(e->err);
    cpr_lines_free(&e->warnings);
    free(e);
}

int cpr_binding_early_finish(CprEarlyBinding *e, const CprReader *r,
                             const char *path, const CprHost *host,
                             const CprVm *vm, char **errp)
{
    const CprRecord *rec = r ? cpr_reader_record(r) : NULL;
    size_t len = 0;
    const uint8_t *verified = r ? cpr_reader_vmdesc_bytes(r, &len) : NULL;
    int ret;

    if (e) {
        /* A refused image's check is not worth starting. */
        cpr_room_finish(&e->task, r != NULL);
    }
    if (!r) {
        ret = -1;
    } else if (e && e->checked && !e->warnings.oom && len == e->len &&
               !memcmp(verified, e->bytes, len)) {
        for (size_t i = 0; i < e->warnings.n; i++) {
            cpr_warn(host, "%s", e->warnings.v[i]);
        }
        ret = e->ret;
        if (ret < 0 && errp && !*errp) {
            *errp = e->err;
            e->err = NULL;
        }
    } else {
        ret = cpr_binding_verify(path, rec, cpr_reader_vmdesc(r), host, vm,
                                 errp);
    }
    if (e) {
        early_free(e);
    }
    return ret;
}

unsigned cpr_binding_early_helper_runs(void)
{
    return atomic_load(&helper_runs);
}
