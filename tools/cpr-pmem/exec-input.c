/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How `cpr-pmem save` reads QEMU's migration stream from stdin: a stop
 * signal (SIGTERM, SIGINT, SIGHUP) ends the read, never the process, so
 * that the save is recorded as failed and the commit is never cut short.
 */
#include "exec.h"

#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/*
 * SIGTERM, SIGINT and SIGHUP end the save as failed (recorded), not the
 * process: they are blocked except while the helper waits for input, so
 * the commit itself is never interrupted.
 */
void exec_input_setup(sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;    /* no SA_RESTART: ppoll returns */
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (int i = 0, sigs[] = { SIGTERM, SIGINT, SIGHUP }; i < 3; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&block, sigs[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &block, wait_mask);
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGHUP);
}

/*
 * Whether a stop signal came: delivered (the handler ran in ppoll), or
 * pending (ppoll returns a ready pipe rather than deliver it, and the
 * signal is blocked again when it returns).  Sets *@why.
 */
static bool stopped(const sigset_t *wait_mask, char **why)
{
    sigset_t pending;

    if (!stop_signal && sigpending(&pending) == 0) {
        for (int sig = 1; sig < NSIG; sig++) {
            if (sigismember(&pending, sig) && !sigismember(wait_mask, sig)) {
                stop_signal = sig;
            }
        }
    }
    if (stop_signal) {
        *why = g_strdup_printf("stopped by signal %d (%s) while reading the "
                               "stream", (int)stop_signal,
                               strsignal(stop_signal));
    }
    return stop_signal != 0;
}

/*
 * read() from stdin, or -1 with *@why; a stop signal ends it.  A signal
 * sent before QEMU's end of the pipe closed is seen before the EOF.
 */
ssize_t exec_input_read(void *buf, size_t len, const sigset_t *wait_mask,
                        char **why)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };

    for (;;) {
        ssize_t n;

        if (stopped(wait_mask, why)) {
            return -1;
        }
        if (ppoll(&pfd, 1, NULL, wait_mask) < 0) {
            if (errno == EINTR) {
                continue;
            }
            *why = g_strdup_printf("cannot wait for the stream: %s",
                                   strerror(errno));
            return -1;
        }
        n = read(STDIN_FILENO, buf, len);
        if (n >= 0) {
            return stopped(wait_mask, why) ? -1 : n;
        }
        if (errno != EINTR && errno != EAGAIN) {
            *why = g_strdup_printf("cannot read the stream: %s",
                                   strerror(errno));
            return -1;
        }
    }
}
