/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A restore's task on the room helper (room.h): run there, off the CPU
 * of the thread that posted it (else the woken helper can take that very
 * CPU from it); without a helper, run by the caller at the end, or
 * dropped if the caller says so.
 */
#include "room.h"

#include <glib.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

typedef struct Seen {
    atomic_bool ran;
    pthread_t thread;
    cpu_set_t cpus;
} Seen;

static void note(void *arg)
{
    Seen *s = arg;

    s->thread = pthread_self();
    pthread_getaffinity_np(pthread_self(), sizeof(s->cpus), &s->cpus);
    atomic_store(&s->ran, true);
}

/* The first CPU of @set, -1 if none. */
static int first_cpu(const cpu_set_t *set)
{
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, set)) {
            return i;
        }
    }
    return -1;
}

static void test_helper_off_my_cpu(void)
{
    cpu_set_t all, one;
    Seen s = { 0 };
    CprTask t = { .fn = note, .arg = &s };
    int cpu;

    g_assert_cmpint(pthread_getaffinity_np(pthread_self(), sizeof(all),
                                           &all), ==, 0);
    if (CPU_COUNT(&all) < 2) {
        g_test_skip("one CPU: nothing to keep it off");
        return;
    }
    cpr_room_init();
    /* This thread on one CPU, so that the post sees which. */
    cpu = first_cpu(&all);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    g_assert_cmpint(pthread_setaffinity_np(pthread_self(), sizeof(one),
                                           &one), ==, 0);
    cpr_room_post(&t);
    /* Not a timing: a bound on a wait that takes microseconds. */
    for (int i = 0; !atomic_load(&s.ran); i++) {
        g_assert_cmpint(i, <, 100000);
        g_usleep(100);
    }
    cpr_room_finish(&t, true);
    g_assert_cmpint(t.state, ==, CPR_TASK_DONE);
    g_assert_false(pthread_equal(s.thread, pthread_self()));
    g_assert_false(CPU_ISSET(cpu, &s.cpus));
    g_assert_cmpint(CPU_COUNT(&s.cpus), >, 0);
    pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
}

static void test_no_helper(void)
{
    Seen s = { 0 }, d = { 0 };
    CprTask t = { .fn = note, .arg = &s }, u = { .fn = note, .arg = &d };

    cpr_room_post(&t);
    cpr_room_finish(&t, true);
    g_assert_true(atomic_load(&s.ran));
    g_assert_true(pthread_equal(s.thread, pthread_self()));
    cpr_room_post(&u);
    cpr_room_finish(&u, false);
    g_assert_false(atomic_load(&d.ran));
    g_assert_cmpint(u.state, ==, CPR_TASK_DONE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* First: no helper started yet in this process. */
    g_test_add_func("/room/task/no-helper", test_no_helper);
    g_test_add_func("/room/task/helper-off-my-cpu", test_helper_off_my_cpu);
    return g_test_run();
}
