/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "parallel.h"
#include "first-failure.h"
#include "image-file.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 8

typedef struct Job {
    uint64_t n;
    size_t scratch_len;
    CprParallelFn fn;
    void *ctx;
    const CprImage *img;        /* for messages */
    _Atomic uint64_t next;
    CprFirstFailure failure;
} Job;

static void *run(void *opaque)
{
    Job *j = opaque;
    void *scratch = j->scratch_len ? malloc(j->scratch_len) : NULL;
    char *err = NULL;
    uint64_t i;

    if (j->scratch_len && !scratch) {
        cpr_image_error(j->img, &err, "out of memory");
    }
    while (!err && !cpr_first_failure_failed(&j->failure) &&
           (i = atomic_fetch_add(&j->next, 1)) < j->n) {
        if (j->fn(j->ctx, i, scratch, &err) < 0 && !err) {
            cpr_image_error(j->img, &err, "failed");
        }
    }
    if (err) {
        cpr_first_failure_note(&j->failure, err);
        free(err);
    }
    free(scratch);
    return NULL;
}

int cpr_parallel_for(uint64_t n, uint64_t want, size_t scratch_len,
                     CprParallelFn fn, void *ctx, const CprImage *img,
                     char **errp)
{
    Job j = { .n = n, .scratch_len = scratch_len, .fn = fn, .ctx = ctx,
              .img = img };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t th[MAX_THREADS];
    unsigned nth = 0;
    int ret = 0;

    if (cpus > 0 && want > (uint64_t)cpus) {
        want = (uint64_t)cpus;
    }
    cpr_first_failure_init(&j.failure);
    for (; nth + 1 < want && nth + 1 < MAX_THREADS; nth++) {
        if (pthread_create(&th[nth], NULL, run, &j) != 0) {
            break;
        }
    }
    run(&j);
    for (unsigned i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
    }
    if (cpr_first_failure_failed(&j.failure)) {
        cpr_first_failure_copy(&j.failure, errp);
        ret = -1;
    }
    cpr_first_failure_destroy(&j.failure);
    return ret;
}
