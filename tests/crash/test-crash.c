/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Simulated power failure at every persist point of a sequence of saves,
 * and at random stores between them (see persist-sim.h, crash-check.h).
 *
 *   test-crash [pmem|msync]...      default: both
 *   CPR_TEST_DIR     where the image files go (default /dev/shm)
 *   CPR_CRASH_SCALE  multiplies random crash points and subsets (default 1)
 *   CPR_CRASH_SEED   PRNG seed (default fixed, so runs are reproducible)
 */
#include "binding.h"
#include "crash-check.h"
#include "crash-saves.h"
#include "format.h"
#include "persist-sim.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POINTS_PER_SAVE 24      /* random store points, times the scale */
#define RANDOM_SUBSETS 12       /* per crash point, times the scale */

typedef struct Run {
    char path[512];
    unsigned scale;
    CrashChecker *c;
    CrashExpect e;
    double store_prob;
    unsigned stores, persists;
    uint64_t gen, committed_len;  /* last committed */
    bool invalidated;             /* ... and it is an invalidation */
    uint8_t *committed, *cur;
} Run;

static void on_point(CprSimPoint pt, void *opaque)
{
    Run *run = opaque;
    char where[64];

    switch (pt) {
    case CPR_SIM_AFTER_STORE:
        run->stores++;
        if ((double)(crash_rand(run->c) >> 11) / (double)(1ull << 53) >=
            run->store_prob) {
            return;
        }
        snprintf(where, sizeof(where), "after store %u", run->stores);
        break;
    case CPR_SIM_BEFORE_PERSIST:
        snprintf(where, sizeof(where), "before persist %u", ++run->persists);
        break;
    case CPR_SIM_AFTER_PERSIST:
        snprintf(where, sizeof(where), "after persist %u", run->persists);
        break;
    default:
        snprintf(where, sizeof(where), "after growth to %llu MiB",
                 (unsigned long long)(cpr_sim.size / MIB));
        break;
    }
    crash_check_point(run->c, &run->e, where);
}

static void fill(Run *run, uint8_t *buf, uint64_t len)
{
    uint64_t i, r = 0;

    for (i = 0; i < len; i++) {
        if (i % 8 == 0) {
            r = crash_rand(run->c);
        }
        buf[i] = (uint8_t)(r >> (i % 8 * 8));
    }
}

static void must(int ret, char *err)
{
    if (ret < 0) {
        fprintf(stderr, "save failed: %s\n", err);
        exit(2);
    }
}

/* Stream run->cur[from, to) in random-sized appends (~32 stores). */
static void append_all(Run *run, CprWriter *w, uint64_t from, uint64_t to)
{
    uint64_t avg = to - from > 64 ? (to - from) / 32 : 1;
    char *err = NULL;

    while (from < to) {
        uint64_t n = 1 + crash_rand(run->c) % (2 * avg);

        n = n < to - from ? n : to - from;
        must(cpr_writer_append(w, run->cur + from, n, &err), err);
        from += n;
        run->e.cur.len = from;
    }
}

/*
 * Append [0, a) with junk in [c, d), pwrite [b, len) (the writer zeroes
 * the gap [a, b), zero in cur too), then pwrite the real [c, d).
 */
static void write_with_gaps(Run *run, CprWriter *w, uint64_t len)
{
    uint64_t a = len / 2, b = a + 10000, c = len / 8, d = len / 4;
    uint8_t *junk = malloc(d - c + 1);
    char *err = NULL;

    if (!junk) {
        exit(2);
    }
    memset(run->cur + a, 0, b - a);
    append_all(run, w, 0, c);
    fill(run, junk, d - c);
    must(cpr_writer_append(w, junk, d - c, &err), err);
    append_all(run, w, d, a);
    must(cpr_writer_pwrite(w, b, run->cur + b, len - b, &err), err);
    must(cpr_writer_pwrite(w, c, run->cur + c, d - c, &err), err);
    run->e.cur.len = len;
    free(junk);
}

static void save(Run *run, const Save *s)
{
    char *err = NULL;
    CprWriter *w;
    uint8_t *swap;

    run->cur = realloc(run->cur, s->len ? s->len : 1);
    if (!run->cur) {
        exit(2);
    }
    fill(run, run->cur, s->len);
    run->e = (CrashExpect){
        .save = s->name,
        .old = { run->gen, run->committed, run->committed_len },
        .cur = { run->gen + 1, run->cur, 0 },
        .slot_off = CPR_SLOT_OFFSET(cpr_slot_for(run->gen + 1)),
        .old_invalidated = run->invalidated,
        .cur_invalidates = s->end == INVALIDATE,
    };
    run->stores = run->persists = 0;
    /* A save makes about 40 stores. */
    run->store_prob = (double)(POINTS_PER_SAVE * run->scale) / 40;
    w = cpr_writer_open_vm(run->path,
                           &(CprHost){ "crash-test", NULL, NULL },
                           NULL, &err);
    must(w ? 0 : -1, err);
    if (cpr_writer_generation(w) != run->gen + 1 ||
        cpr_writer_is_pmem(w) != cpr_sim.pmem) {
        fprintf(stderr, "unexpected generation or media kind\n");
        exit(2);
    }
    if (s->gaps) {
        write_with_gaps(run, w, s->len);
    } else {
        append_all(run, w, 0, s->len);
    }
    if (s->end == COMMIT) {
        run->e.committing = true;
        must(cpr_writer_commit(w, &err), err);
        run->gen++;
        swap = run->committed;
        run->committed = run->cur;
        run->committed_len = s->len;
        run->cur = swap;
        run->invalidated = false;
    } else if (s->end == INVALIDATE) {
        run->e.committing = true;
        must(cpr_writer_invalidate(w, &err), err);
        run->gen++;
        run->committed_len = 0;
        run->invalidated = true;
    } else if (s->end == ABORT) {
        cpr_writer_abort(w);
    }
    cpr_writer_close(w);
}

static unsigned env_uint(const char *name, unsigned dflt)
{
    const char *v = getenv(name);

    return v && *v ? (unsigned)strtoul(v, NULL, 0) : dflt;
}

static int run_mode(bool pmem, const char *dir, unsigned scale, uint64_t seed)
{
    Run run = { .scale = scale };
    const CrashStats *st;
    char img[600];
    struct timespec t0, t1;
    size_t i;
    int fails;

    snprintf(run.path, sizeof(run.path), "%s/crash-%d-%s.img", dir,
             (int)getpid(), pmem ? "pmem" : "msync");
    snprintf(img, sizeof(img), "%s.crash", run.path);
    unlink(run.path);
    run.c = crash_checker_new(img, seed, RANDOM_SUBSETS * scale);
    cpr_sim.hook = on_point;
    cpr_sim.opaque = &run;
    cpr_sim_reset(pmem);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < NR_SAVES; i++) {
        save(&run, &saves[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    st = crash_stats(run.c);
    printf("crash images [%s]: %llu checked at %llu crash points, "
           "%llu accepted (gen g: %llu, gen g+1: %llu), %llu refused "
           "(%llu before the first commit, %llu invalidated), "
           "%llu torn accepted, %llu wrongly refused; %.1f s\n",
           pmem ? "pmem, 8-byte words" : "msync, 4 KiB pages",
           (unsigned long long)st->images, (unsigned long long)st->points,
           (unsigned long long)(st->acc_old + st->acc_new),
           (unsigned long long)st->acc_old, (unsigned long long)st->acc_new,
           (unsigned long long)(st->refused_ok + st->refused_inval),
           (unsigned long long)st->refused_ok,
           (unsigned long long)st->refused_inval,
           (unsigned long long)st->torn, (unsigned long long)st->refused_bad,
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    fails = st->torn || st->refused_bad || !st->acc_new;
    crash_checker_free(run.c);
    unlink(run.path);
    cpr_sim_reset(pmem);
    free(run.committed);
    free(run.cur);
    return fails;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("CPR_TEST_DIR");
    unsigned scale = env_uint("CPR_CRASH_SCALE", 1);
    uint64_t seed = env_uint("CPR_CRASH_SEED", 20240611);
    int i, fails = 0;

    dir = dir && *dir ? dir : "/dev/shm";
    scale = scale ? scale : 1;
    printf("seed %llu, scale %u\n", (unsigned long long)seed, scale);
    if (argc < 2) {
        fails |= run_mode(true, dir, scale, seed);
        fails |= run_mode(false, dir, scale, seed);
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "pmem") && strcmp(argv[i], "msync")) {
            fprintf(stderr, "usage: %s [pmem|msync]...\n", argv[0]);
            return 2;
        }
        fails |= run_mode(!strcmp(argv[i], "pmem"), dir, scale, seed);
    }
    cpr_sim_free();
    return fails ? 1 : 0;
}
