/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fault-guard.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct Guard {
    sigjmp_buf env;
    uintptr_t lo, hi;
    volatile sig_atomic_t armed;
    bool unblocked;             /* this thread takes SIGBUS now */
} Guard;

static __thread Guard guard;
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void unblock_sigbus(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    uintptr_t addr = (uintptr_t)si->si_addr;

    /* An asynchronous machine-check report is not about our access. */
    if (guard.armed && si->si_code != BUS_MCEERR_AO &&
        addr >= guard.lo && addr < guard.hi) {
        guard.armed = 0;
        siglongjmp(guard.env, 1);
    }
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, ctx);
    } else if (previous.sa_handler != SIG_DFL &&
               previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
    } else {
        /* What would have happened without us: the default action. */
        signal(SIGBUS, SIG_DFL);
        raise(SIGBUS);
    }
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &previous);
}

int cpr_fault_guard(const void *lo, size_t len, void (*fn)(void *opaque),
                    void *opaque)
{
    pthread_once(&installed, install);
    if (!guard.unblocked) {
        unblock_sigbus();
        guard.unblocked = true;
    }
    if (sigsetjmp(guard.env, 0)) {
        /* The handler left SIGBUS blocked when it jumped out. */
        unblock_sigbus();
        return -1;
    }
    guard.lo = (uintptr_t)lo;
    guard.hi = (uintptr_t)lo + len;
    guard.armed = 1;
    fn(opaque);
    guard.armed = 0;
    return 0;
}

static void run_access(void *opaque)
{
    CprAccess *a = opaque;

    a->op(a);
}

int cpr_fault_guard_access(const void *lo, size_t span, CprAccess *a)
{
    return cpr_fault_guard(lo, span, run_access, a);
}

void cpr_access_copy(CprAccess *a)
{
    (a->copy ? a->copy : memcpy)(a->dst, a->src, a->len);
}
