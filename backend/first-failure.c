/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "first-failure.h"

#include <stdlib.h>
#include <string.h>

void cpr_first_failure_init(CprFirstFailure *f)
{
    atomic_init(&f->failed, false);
    pthread_mutex_init(&f->lock, NULL);
    f->msg = NULL;
}

void cpr_first_failure_destroy(CprFirstFailure *f)
{
    pthread_mutex_destroy(&f->lock);
    free(f->msg);
    f->msg = NULL;
}

void cpr_first_failure_note(CprFirstFailure *f, const char *msg)
{
    pthread_mutex_lock(&f->lock);
    if (!f->msg && msg) {
        f->msg = strdup(msg);
    }
    atomic_store(&f->failed, true);
    pthread_mutex_unlock(&f->lock);
}

void cpr_first_failure_copy(CprFirstFailure *f, char **errp)
{
    pthread_mutex_lock(&f->lock);
    if (errp && !*errp && f->msg) {
        *errp = strdup(f->msg);
    }
    pthread_mutex_unlock(&f->lock);
}
