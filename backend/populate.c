/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "populate.h"
#include "atomic-max.h"
#include "image-file.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Small enough to stop within a millisecond, large enough to be cheap. */
#define STEP (2ull << 20)
/* A thread's first step: the stream's first stores come within a
 * fraction of a millisecond and find their pages done sooner; the steps
 * double from there. */
#define FIRST_STEP (256ull << 10)

/* A store this far beyond the cursor does not drag it along. */
#define JUMP (8ull << 20)

/* What every populator of this process did (cpr_populator_stats). */
static struct {
    _Atomic uint64_t populated, threads, stops, remaps, remaps_running;
    _Atomic uint64_t last_goal, files_running, jobs;
} stats;

struct CprPopulator {
    CprPersist *p;
    _Atomic uint64_t done;      /* the mapping is populated below this */
    uint64_t end;               /* the thread's goal */
    atomic_bool stop;
    /* background()'s thread waits for the stream: @go, posted once by
     * the first need() (or by stop()) that clears @waiting. */
    atomic_bool waiting;
    sem_t go;
    bool running;
    pthread_t thread;
    /* cpr_populator_start_file(): the thread maps this image itself. */
    CprImage *img;
    /* cpr_populator_job(): run once on the thread, freed with it. */
    void (*job)(void *arg);
    void (*job_free)(void *arg);
    void *job_arg;
};

/* done = max(done, off): the thread and need() both advance it. */
static void advance(CprPopulator *pop, uint64_t off)
{
    cpr_atomic_max(&pop->done, off);
}

/* run_job -- the job, once, unless the thread is told to stop first */
static void run_job(CprPopulator *pop)
{
    if (pop->job && !atomic_load(&pop->stop)) {
        pop->job(pop->job_arg);
        pop->job = NULL;
        atomic_fetch_add(&stats.jobs, 1);
    }
}

static void populate_to_end(CprPopulator *pop)
{
    uint64_t off, step = FIRST_STEP;

    run_job(pop);
    while ((off = atomic_load(&pop->done)) < pop->end &&
           !atomic_load(&pop->stop)) {
        uint64_t len = pop->end - off < step ? pop->end - off : step;

        cpr_persist_populate(pop->p, off, len);
        atomic_fetch_add(&stats.populated, len);
        advance(pop, off + len);
        step = step < STEP ? step * 2 : STEP;
    }
}

/*
 * run -- background()'s thread.  QEMU stops the VM right after out_open,
 * in the migrate command: work on another CPU before that competes with
 * the stop for CPUs (its vCPUs', its main thread's).  So the thread
 * starts when the stream does, in the pause, beside the stores.
 */
static void *run(void *opaque)
{
    CprPopulator *pop = opaque;

    while (sem_wait(&pop->go) < 0 && errno == EINTR) {
        /* again */
    }
    populate_to_end(pop);
    return NULL;
}

/* wake -- let a waiting background() thread go, once */
static void wake(CprPopulator *pop)
{
    if (atomic_load(&pop->waiting) && atomic_exchange(&pop->waiting, false)) {
        sem_post(&pop->go);
    }
}

static void *run_file(void *opaque)
{
    CprPopulator *pop = opaque;
    struct sched_param idle = { 0 };
    char *err = NULL;

    /*
     * Right after a restore the guest's first milliseconds and the
     * management plane's first commands matter; the next save is hours
     * away.  Run only when a CPU has nothing else to do.
     */
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);

    /*
     * Growing is the one change: under a shared lock, so that no save can
     * start meanwhile (whose mapping a failed growth, undone by truncating
     * back, would cut short) while restores still can.
     */
    if (flock(pop->img->fd, LOCK_SH | LOCK_NB) < 0) {
        return NULL;
    }
    pop->p = cpr_persist_map(pop->img, pop->end, &err);
    flock(pop->img->fd, LOCK_UN);
    free(err);
    /*
     * Pages are populated on memory and DAX only.  On a disk filesystem
     * that takes write faults (tmpfs alone maps writable on a read
     * fault), which dirty every page: writeback would write the whole
     * room, 1.25 times the payload, for nothing.  The growth above
     * allocated its blocks; the save's own faults find them.
     */
    if (pop->p) {
        if (cpr_image_populate_is_cheap(pop->img)) {
            populate_to_end(pop);
        }
        cpr_persist_unmap(pop->p);
        pop->p = NULL;
    }
    return NULL;
}

CprPopulator *cpr_populator_new(void)
{
    CprPopulator *pop = calloc(1, sizeof(CprPopulator));

    if (pop && sem_init(&pop->go, 0, 0) < 0) {
        free(pop);
        return NULL;
    }
    return pop;
}

void cpr_populator_stop(CprPopulator *pop)
{
    if (pop && pop->running) {
        atomic_store(&pop->stop, true);
        wake(pop);
        pthread_join(pop->thread, NULL);
        pop->running = false;
        if (atomic_load(&pop->done) < pop->end) {
            atomic_fetch_add(&stats.stops, 1);
        }
    }
}

void cpr_populator_free(CprPopulator *pop)
{
    if (!pop) {
        return;
    }
    cpr_populator_stop(pop);
    if (pop->img) {
        atomic_fetch_sub(&stats.files_running, 1);
    }
    if (pop->job_free) {
        pop->job_free(pop->job_arg);
    }
    cpr_image_free(pop->img);
    sem_destroy(&pop->go);
    free(pop);
}

void cpr_populator_reset(CprPopulator *pop, CprPersist *p, uint64_t from)
{
    /* The caller stops the thread before the mapping changes: a thread
     * still running here populated through a remap. */
    if (pop->running) {
        atomic_fetch_add(&stats.remaps_running, 1);
    }
    atomic_fetch_add(&stats.remaps, 1);
    cpr_populator_stop(pop);
    pop->p = p;
    atomic_store(&pop->done, from);
}

void cpr_populator_need(CprPopulator *pop, uint64_t from, uint64_t end,
                        uint64_t ahead)
{
    uint64_t done = atomic_load(&pop->done), n;
    /* A store far ahead populates its own range; the cursor stays. */
    bool cursor = from <= done || from - done <= JUMP;

    wake(pop);
    if (end <= done) {
        return;
    }
    if (cursor) {
        from = done;
        end = end > done + ahead ? end : done + ahead;
        /*
         * Advance first, so that the thread skips what this call does.
         * Past the mapping's end there is nothing to populate, and
         * nothing stored before a growth, whose remap resets the cursor.
         */
        advance(pop, end);
    }
    n = cpr_persist_populate(pop->p, from, end - from);
    if (cursor) {
        atomic_fetch_add(&stats.populated, n);
    }
}

static bool start(CprPopulator *pop, void *(*fn)(void *), uint64_t end)
{
    pop->end = end;
    atomic_store(&pop->stop, false);
    atomic_store(&pop->waiting, fn == run);
    pop->running = pthread_create(&pop->thread, NULL, fn, pop) == 0;
    if (!pop->running) {
        atomic_store(&pop->waiting, false);
    }
    if (pop->running) {
        atomic_fetch_add(&stats.threads, 1);
    }
    return pop->running;
}

void cpr_populator_background(CprPopulator *pop, uint64_t end)
{
    atomic_store(&stats.last_goal, end);
    if (!pop->running && (atomic_load(&pop->done) < end || pop->job) &&
        !start(pop, run, end)) {
        run_job(pop);       /* no thread: as before there was one */
    }
}

void cpr_populator_job(CprPopulator *pop, void (*fn)(void *),
                       void (*free_fn)(void *), void *arg)
{
    if (pop->job_free) {
        pop->job_free(pop->job_arg);
    }
    pop->job = arg ? fn : NULL;
    pop->job_free = arg ? free_fn : NULL;
    pop->job_arg = arg;
}

CprPopulator *cpr_populator_start_file(CprImage *img, uint64_t off,
                                       uint64_t end)
{
    CprPopulator *pop = img ? cpr_populator_new() : NULL;

    if (!pop) {
        cpr_image_free(img);
        return NULL;
    }
    pop->img = img;
    atomic_fetch_add(&stats.files_running, 1);
    atomic_store(&pop->done, off);
    if (off >= end || !start(pop, run_file, end)) {
        cpr_populator_free(pop);
        return NULL;
    }
    return pop;
}

void cpr_populator_stats(CprPopulatorStats *s)
{
    s->populated = atomic_load(&stats.populated);
    s->threads = atomic_load(&stats.threads);
    s->stops = atomic_load(&stats.stops);
    s->remaps = atomic_load(&stats.remaps);
    s->remaps_running = atomic_load(&stats.remaps_running);
    s->last_goal = atomic_load(&stats.last_goal);
    s->files_running = atomic_load(&stats.files_running);
    s->jobs = atomic_load(&stats.jobs);
}
