/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "room.h"
#include "image-file.h"
#include "populate.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Room for the next save, being populated since the last restore.  QEMU
 * calls in_close and out_open from its main thread.
 *
 * in_close runs in the main-loop callback that has just resumed the VM,
 * before QEMU answers any QMP command.  Closing the reader there (its 1 MiB
 * cache goes back with a heap trim: a TLB shootdown of every CPU the vCPUs
 * run on), reopening the image and creating the populating thread (~100-300
 * µs of the main thread, and a new thread at normal priority next to the
 * vCPU until it lowers its own) is what a management client saw as a late
 * "running".  So cpr_room_after_restore() only hands the reader to a helper
 * made when the transport loads in a QEMU started to restore (with
 * -incoming; at start-up with x-preload-transports), or else at in_open
 * (warmup.c); a QEMU that only saves never makes it.  After a restore the
 * helper waits at SCHED_IDLE (before: see the restore's task, below) on a
 * semaphore, holding nothing, so it gets a CPU when one has nothing else to
 * do; it raises itself before it takes @lock, does the job at normal
 * priority (it takes malloc's and glibc's locks: it must not be starved
 * holding them) and lowers itself again only once it let go of @lock.  @lock
 * guards the job and @room; the helper holds it while it works, so out_open
 * never misses a populator that is being started.
 *
 * fork(): a child has no helper and none of the parent's populators, and
 * must not inherit a lock a thread of its parent held, @lock or one of
 * the allocator's (a sanitizer's allocator does not lock itself around a
 * fork).  So a fork waits until the helper has started and is idle
 * (@busy false), holding @lock across it; the child does its room work
 * inline and forgets the parent's populator.
 *
 * The same helper takes a restore's task (cpr_room_post): work of in_open
 * that can run beside the caller's.  It runs a task without @lock (the
 * caller takes it back under @lock if the helper has not started it), and
 * before any room job.
 */
static CprPopulator *room;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* !busy; a task done */
static pthread_cond_t settled = PTHREAD_COND_INITIALIZER;
static sem_t wake;
static CprReader *job;          /* the restore's reader, not closed yet */
static uint64_t job_off, job_end;   /* and the room to make there */
static bool helper_running;
static bool busy;               /* starting, or doing a job */
static CprTask *task;           /* posted, not yet taken by anyone */
static pthread_t helper;
static cpu_set_t helper_cpus;   /* its own affinity, as it started */
static bool pinned;             /* kept off a task's poster's CPU */
/* A restore's room was asked for: the guest runs, the helper waits at
 * SCHED_IDLE from now on (read without @lock where it lowers itself). */
static atomic_bool restored;

/* Under @lock: close @r, having started the populator of the room
 * [@off, @end) the next save into its image will use (none if empty). */
static void room_start(CprReader *r, uint64_t off, uint64_t end)
{
    /* The very file that was verified, not whatever the path names now. */
    CprImage *img = off < end ? cpr_image_reopen(cpr_reader_file(r)) : NULL;

    cpr_populator_free(room);
    room = NULL;
    if (img) {
        room = cpr_populator_start_file(img, off, end);
    }
    cpr_reader_close(r);
}

/* set_policy -- thread @t's scheduling policy (SCHED_*) */
static void set_policy(pthread_t t, int policy)
{
    struct sched_param p = { 0 };

    pthread_setschedparam(t, policy, &p);
}

/*
 * warm -- what a thread pays for once, paid at load: its malloc arena and
 * first heap pages, and its stack's first pages (a restore's task on a
 * fresh helper took 4 times as long to decode the same description).
 */
static void warm(void)
{
    volatile uint8_t stack[16384];
    void *p = malloc(16384);

    memset((void *)stack, 0, sizeof(stack));
    if (p) {
        memset(p, 0, 16384);
        free(p);
    }
}

static void *room_helper(void *opaque)
{
    (void)opaque;
    warm();
    pthread_mutex_lock(&lock);
    for (;;) {
        if (task) {
            CprTask *t = task;

            task = NULL;
            t->state = CPR_TASK_RUNNING;
            pthread_mutex_unlock(&lock);
            t->fn(t->arg);
            pthread_mutex_lock(&lock);
            t->state = CPR_TASK_DONE;
            pthread_cond_broadcast(&settled);
        }
        if (pinned) {
            pthread_setaffinity_np(pthread_self(), sizeof(helper_cpus),
                                   &helper_cpus);
            pinned = false;
        }
        if (job) {
            room_start(job, job_off, job_end);
            job = NULL;
        }
        busy = false;
        pthread_cond_broadcast(&settled);
        pthread_mutex_unlock(&lock);
        /* Until a restore is over no vCPU runs, and in_open's task must
         * not wait for a CPU that other processes keep busy: it waits at
         * normal priority (cpr_room_post keeps it off in_open's CPU).
         * The second look: cpr_room_after_restore() may have lowered it
         * between the two. */
        if (atomic_load(&restored)) {
            set_policy(pthread_self(), SCHED_IDLE);
        } else {
            set_policy(pthread_self(), SCHED_OTHER);
            if (atomic_load(&restored)) {
                set_policy(pthread_self(), SCHED_IDLE);
            }
        }
        while (sem_wait(&wake) < 0) {
            /* EINTR */
        }
        set_policy(pthread_self(), SCHED_OTHER);
        pthread_mutex_lock(&lock);
        /* Again: cpr_room_after_restore() may have lowered it since. */
        set_policy(pthread_self(), SCHED_OTHER);
        busy = true;
    }
    return NULL;
}

/* fork_prepare -- hold @lock, the helper started and idle, across fork */
static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
    while (busy) {
        pthread_cond_wait(&settled, &lock);
    }
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

/* fork_child -- the threads did not come along: no helper, no populator */
static void fork_child(void)
{
    helper_running = false;
    room = NULL;            /* its thread is the parent's; not joinable */
    task = NULL;            /* a parent's in_open's, left to the parent */
    pthread_mutex_unlock(&lock);
}

static void room_helper_create(void)
{
    pthread_attr_t attr;

    if (sem_init(&wake, 0, 0) < 0 || pthread_attr_init(&attr) != 0) {
        return;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* What it inherits, and gets back after a task (pin_away). */
    if (pthread_getaffinity_np(pthread_self(), sizeof(helper_cpus),
                               &helper_cpus) != 0) {
        CPU_ZERO(&helper_cpus);
    }
    busy = true;            /* until the helper first waits */
    helper_running = pthread_create(&helper, &attr, room_helper, NULL) == 0;
    if (!helper_running) {
        busy = false;
    }
    pthread_attr_destroy(&attr);
    if (helper_running) {
        pthread_atfork(fork_prepare, fork_parent, fork_child);
    }
}


void cpr_room_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, room_helper_create);
}


void cpr_room_stop(void)
{
    CprPopulator *pop;

    pthread_mutex_lock(&lock);
    /* A save right after a restore, before the helper got a CPU: the
     * room is made all the same (the join below waits for the growth),
     * as every restore promises. */
    if (job) {
        room_start(job, job_off, job_end);
        job = NULL;
    }
    pop = room;
    room = NULL;
    pthread_mutex_unlock(&lock);
    /* Whatever it has not done, the save does; it must not compete. */
    cpr_populator_free(pop);
}

void cpr_room_after_restore(CprReader *r, uint64_t off, uint64_t end)
{
    pthread_mutex_lock(&lock);
    if (job) {                  /* not expected: one restore per process */
        room_start(job, job_off, job_end);
        job = NULL;
    }
    if (helper_running) {
        job = r;
        job_off = off;
        job_end = end;
        /* The guest is about to run: from now on the helper waits, and
         * this job wakes it, at SCHED_IDLE. */
        if (!atomic_exchange(&restored, true) && !busy) {
            set_policy(helper, SCHED_IDLE);
        }
        sem_post(&wake);
    } else {
        room_start(r, off, end);
    }
    pthread_mutex_unlock(&lock);
}

/*
 * pin_away -- under @lock: keep the helper off this thread's CPU until
 * it has run its task (it takes its whole set back then).  Woken, the
 * scheduler may put it next to its waker, where it takes the CPU from
 * the very thread it should run beside (in_open waited 65 us in
 * cpr_room_post for the whole task).
 * Nothing if this is the only CPU it may use.
 */
static void pin_away(void)
{
    cpu_set_t away = helper_cpus;
    int cpu = sched_getcpu();

    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &away)) {
        return;
    }
    CPU_CLR(cpu, &away);
    if (CPU_COUNT(&away) > 0 &&
        pthread_setaffinity_np(helper, sizeof(away), &away) == 0) {
        pinned = true;
    }
}

void cpr_room_post(CprTask *t)
{
    bool wake_helper;

    t->state = CPR_TASK_POSTED;
    pthread_mutex_lock(&lock);
    wake_helper = helper_running && !task;
    if (wake_helper) {
        task = t;
        pin_away();
    }
    pthread_mutex_unlock(&lock);
    /* Woken after the unlock: it must not find @lock held. */
    if (wake_helper) {
        sem_post(&wake);
    }
}

void cpr_room_finish(CprTask *t, bool run)
{
    bool mine;

    pthread_mutex_lock(&lock);
    mine = t->state == CPR_TASK_POSTED;
    if (mine) {
        if (task == t) {
            task = NULL;
        }
        t->state = CPR_TASK_RUNNING;
    }
    while (!mine && t->state != CPR_TASK_DONE) {
        pthread_cond_wait(&settled, &lock);
    }
    pthread_mutex_unlock(&lock);
    if (mine) {
        if (run) {
            t->fn(t->arg);
        }
        t->state = CPR_TASK_DONE;
    }
}
