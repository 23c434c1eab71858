/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * "The first failure wins", for work spread over threads (the writer's
 * stores, C5; cpr_parallel_for): a flag any thread tests without a lock,
 * and the first failure's message, kept under a lock, so that whichever
 * thread the caller hears from names the real cause.
 */
#ifndef CPR_FIRST_FAILURE_H
#define CPR_FIRST_FAILURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct CprFirstFailure {
    atomic_bool failed;
    pthread_mutex_t lock;
    char *msg;                  /* the first failure's, under lock */
} CprFirstFailure;

void cpr_first_failure_init(CprFirstFailure *f);
void cpr_first_failure_destroy(CprFirstFailure *f);

/* A failure, with @msg (may be NULL) kept if it is the first one. */
void cpr_first_failure_note(CprFirstFailure *f, const char *msg);

/* A copy of the first failure's message into *@errp, unless @errp is
 * NULL or set already (or no failure said why). */
void cpr_first_failure_copy(CprFirstFailure *f, char **errp);

static inline bool cpr_first_failure_failed(CprFirstFailure *f)
{
    return atomic_load(&f->failed);
}

#endif
