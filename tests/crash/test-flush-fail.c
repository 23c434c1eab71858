/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Failed flushes at every persist point of the crash tests' save sequence
 * (crash-saves.h): the payload's, the record's and the undo's, for every
 * CprSimPromote mode, transient (one call) and sticky (a dead device).
 * For each failure point, starting from the state the sequence reached:
 *
 *  1. commit/invalidate returns -1 iff one of its flushes failed, with a
 *     message naming the file (and 0 when the failure is armed past the
 *     last flush of the save);
 *  2. in the same boot, i.e. from the page cache (the model's volatile
 *     view, which the image file holds once the writer closed), the new
 *     generation loads iff the commit returned 0, else the previous one,
 *     or the refusal that one had (nothing committed, invalidated);
 *  3. crash images (durable view + subsets of the dirty units) at the
 *     failure and after the failed save load the previous generation, or
 *     the new one only if a sticky failure also defeated the writer's
 *     undo, and never a torn stream;
 *  4. the next save, with the device working again, commits and loads
 *     (with crash images at each of its persist points too).
 *
 * With --undo-lost, instead: the one device behaviour the promote modes
 * do not give, a failed record flush that wrote all of the record, then
 * a dead device for the undo's flush (nothing of it reaches the media).
 * The next save in the same boot places its payload over the failed
 * save's and writes its record into the same slot, while the media still
 * holds the failed record: unless the writer first makes that slot
 * durable as it reads it (writer.c settle_slot), a crash before the next
 * record flush finds that record valid over an overwritten payload.
 *
 *   test-flush-fail [--undo-lost] [pmem|msync]...   default: both
 *   CPR_TEST_DIR    where the image files go (default /dev/shm)
 *   CPR_CRASH_SEED  PRNG seed (default fixed, so runs are reproducible)
 */
#include "binding.h"
#include "crash-check.h"
#include "crash-saves.h"
#include "format.h"
#include "persist-sim.h"
#include "reader.h"
#include "writer.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RANDOM_SUBSETS 4        /* per crash point */
#define RECOVERY_LEN 100000     /* the save after a failed one */

static const char *const promote_name[] = { "none", "all", "some" };

/* What a restore must find: the last committed save. */
typedef struct Gen {
    uint64_t gen;               /* 0: nothing committed */
    bool inval;                 /* an invalidation: must refuse */
    const uint8_t *data;
    uint64_t len;
} Gen;

/* The model and the image file between two saves. */
typedef struct Snap {
    CprSim sim;                 /* with its own copies of the arrays */
    Gen last;
} Snap;

typedef struct Stats {
    unsigned saves, points, injected, transient, sticky;
    unsigned early, payload, record, undo_failed, rec_durable;
    unsigned failed_ret, armed_ok;
    unsigned boot_old, boot_new, boot_refused;
    unsigned recovered, errors;
} Stats;

typedef struct Run {
    bool pmem;
    char path[512];
    CrashChecker *c;
    CrashExpect e;              /* for checks from the hook */
    bool check_persists;        /* crash images at every persist point */
    enum { OPENING, STREAMING, COMMITTING } phase;
    unsigned calls, failed;     /* persist calls and failures seen */
    unsigned commit_calls;      /* persist calls inside commit/invalidate */
    int fail_phase;             /* where the first failure was */
    unsigned fail_call;         /* ... and which commit_calls */
    bool last_failed;
    CprSimPromote then;         /* fail_promote after the first failure */
    Gen last;
    uint8_t *data[NR_SAVES];    /* each save's stream, kept for the run */
    uint8_t *recovery;
    Stats st;
} Run;

static void die(const char *what, const char *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err : "failed");
    exit(2);
}

#define CHECK(run, cond, ...) do { if (!(cond)) { \
    (run)->st.errors++; \
    if ((run)->st.errors <= 20) { \
        fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); } \
    } } while (0)

static void *xmemdup(const void *src, size_t len)
{
    void *p = malloc(len ? len : 1);

    if (!p) {
        die("malloc", NULL);
    }
    return len ? memcpy(p, src, len) : p;
}

static void snap_take(Snap *s, const Gen *last)
{
    s->sim = cpr_sim;
    s->sim.vol = xmemdup(cpr_sim.vol, cpr_sim.size);
    s->sim.dur = xmemdup(cpr_sim.dur, cpr_sim.size);
    s->sim.dirty = xmemdup(cpr_sim.dirty, cpr_sim.size / cpr_sim.unit);
    s->sim.pending = xmemdup(cpr_sim.pending,
                             cpr_sim.cap * sizeof(uint64_t));
    s->last = *last;
}

static void snap_free(Snap *s)
{
    free(s->sim.vol);
    free(s->sim.dur);
    free(s->sim.dirty);
    free(s->sim.pending);
}

/* Back to @s: the model, and the image file (which holds "vol" between
 * saves, as cpr_persist_unmap left it). */
static void snap_restore(Run *run, const Snap *s)
{
    uint64_t epoch = cpr_sim.epoch;
    void (*hook)(CprSimPoint, void *) = cpr_sim.hook;
    void *opaque = cpr_sim.opaque;
    int fd;

    cpr_sim_free();
    cpr_sim = s->sim;
    cpr_sim.vol = xmemdup(s->sim.vol, s->sim.size);
    cpr_sim.dur = xmemdup(s->sim.dur, s->sim.size);
    cpr_sim.dirty = xmemdup(s->sim.dirty, s->sim.size / s->sim.unit);
    cpr_sim.pending = xmemdup(s->sim.pending, s->sim.cap * sizeof(uint64_t));
    /* A number the crash checker has never seen: its image is stale. */
    cpr_sim.epoch = epoch + 1;
    cpr_sim.hook = hook;
    cpr_sim.opaque = opaque;
    cpr_sim.fail_at = 0;
    run->last = s->last;
    if (cpr_sim.size == 0) {
        unlink(run->path);      /* the first save creates it */
        return;
    }
    fd = open(run->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)cpr_sim.size) < 0 ||
        pwrite(fd, cpr_sim.vol, cpr_sim.size, 0) != (ssize_t)cpr_sim.size) {
        die(run->path, "cannot restore");
    }
    close(fd);
}

static void on_point(CprSimPoint pt, void *opaque)
{
    Run *run = opaque;
    char where[64];

    switch (pt) {
    case CPR_SIM_BEFORE_PERSIST:
        run->calls++;
        run->commit_calls += run->phase == COMMITTING;
        run->last_failed = false;
        if (!run->check_persists) {
            return;
        }
        snprintf(where, sizeof(where), "before persist %u", run->calls);
        break;
    case CPR_SIM_AFTER_PERSIST:
        if (!run->check_persists) {
            return;
        }
        snprintf(where, sizeof(where), "after persist %u", run->calls);
        break;
    case CPR_SIM_PERSIST_FAILED:
        if (!run->failed++) {
            run->fail_phase = (int)run->phase;
            run->fail_call = run->commit_calls;
        }
        run->last_failed = true;
        cpr_sim.fail_promote = run->then;
        snprintf(where, sizeof(where), "at failed persist %u", run->calls);
        break;
    default:
        return;
    }
    crash_check_point(run->c, &run->e, where);
}

/* The stream of @s, as test-crash writes it: appends, or with gaps an
 * append, a pwrite past a zero gap, and out-of-order rewrites. */
static int stream(CprWriter *w, const Save *s, const uint8_t *data,
                  char **errp)
{
    uint64_t len = s->len, a = len / 2, b = a + 10000, step = len / 7 + 1;

    if (s->gaps) {
        return cpr_writer_append(w, data, a, errp) < 0 ||
               cpr_writer_pwrite(w, b, data + b, len - b, errp) < 0 ||
               cpr_writer_pwrite(w, len / 8, data + len / 8, len / 8,
                                 errp) < 0 ? -1 : 0;
    }
    for (uint64_t off = 0; off < len; off += step) {
        if (cpr_writer_append(w, data + off, len - off < step ? len - off :
                              step, errp) < 0) {
            return -1;
        }
    }
    return 0;
}

static bool stream_is(CprReader *r, const Gen *g)
{
    uint8_t *buf = malloc(g->len + 1);
    uint64_t off = 0;
    char *err = NULL;
    ssize_t n;
    bool same;

    if (!buf) {
        die("malloc", NULL);
    }
    while ((n = cpr_reader_read(r, buf + off, g->len + 1 - off, &err)) > 0) {
        off += (uint64_t)n;
        if (off > g->len) {
            break;
        }
    }
    same = n == 0 && off == g->len && memcmp(buf, g->data, g->len) == 0;
    free(buf);
    free(err);
    return same;
}

/* (2): what a restore in this boot finds is @want, or its refusal. */
static void check_boot(Run *run, const Gen *want, const char *what)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(run->path, &err);

    if (!r) {
        bool ok = want->gen == 0 ? strstr(err, "no committed image") != NULL :
                  want->inval && strstr(err, "was invalidated");

        CHECK(run, ok, "%s: same-boot restore refused, expected generation "
              "%llu%s: %s", what, (unsigned long long)want->gen,
              want->inval ? " (invalidated)" : "", err);
        run->st.boot_refused += ok;
        free(err);
        return;
    }
    CHECK(run, want->gen && !want->inval &&
          cpr_reader_record(r)->generation == want->gen &&
          stream_is(r, want), "%s: same-boot restore loaded generation "
          "%llu, expected %llu%s", what,
          (unsigned long long)cpr_reader_record(r)->generation,
          (unsigned long long)want->gen, want->inval ? " (invalidated)" : "");
    cpr_reader_close(r);
}

/*
 * Run one save to its end.  Returns -1 with *errp if a step failed (open,
 * a write, commit or invalidate), else 0; a step may fail only because a
 * flush failed.
 */
static int save(Run *run, const Save *s, const uint8_t *data, char **errp)
{
    CprWriter *w;
    int ret = 0;

    run->phase = OPENING;
    run->commit_calls = 0;
    w = cpr_writer_open_vm(run->path,
                           &(CprHost){ "flush-fail-test", NULL, NULL },
                           NULL, errp);
    if (!w) {
        return -1;
    }
    if (cpr_writer_generation(w) != run->last.gen + 1 ||
        cpr_writer_is_pmem(w) != run->pmem) {
        die(s->name, "unexpected generation or media kind");
    }
    run->phase = STREAMING;
    ret = stream(w, s, data, errp);
    run->phase = COMMITTING;
    run->e.committing = s->end == COMMIT || s->end == INVALIDATE;
    if (ret < 0) {
        /* The save is over; what is published stays as it was. */
    } else if (s->end == COMMIT) {
        ret = cpr_writer_commit(w, errp);
    } else if (s->end == INVALIDATE) {
        ret = cpr_writer_invalidate(w, errp);
    } else if (s->end == ABORT) {
        cpr_writer_abort(w);
    }
    cpr_writer_close(w);
    return ret;
}

static Gen gen_of(const Run *run, const Save *s, const uint8_t *data)
{
    if (s->end == INVALIDATE) {
        return (Gen){ run->last.gen + 1, true, NULL, 0 };
    }
    return (Gen){ run->last.gen + 1, false, data, s->len };
}

static CrashExpect expect(const Run *run, const Save *s, const Gen *cur)
{
    return (CrashExpect){
        .save = s->name,
        .old = { run->last.gen, run->last.data, run->last.len },
        .cur = { cur->gen, cur->data, cur->len },
        .slot_off = CPR_SLOT_OFFSET(cpr_slot_for(cur->gen)),
        .old_invalidated = run->last.inval,
        .cur_invalidates = cur->inval,
    };
}

/*
 * One failure point: from @base, save @s with persist call @k of the save
 * failing, then a save with the device working again.
 */
static void scenario(Run *run, const Save *s, const uint8_t *data,
                     const Snap *base, unsigned n, unsigned k,
                     CprSimPromote promote, CprSimPromote then, bool sticky)
{
    static const Save recovery = { "after a failed flush", RECOVERY_LEN,
                                   COMMIT, false };
    Gen cur, stale = { 0 };
    char what[200], *err = NULL;
    uint8_t before[CPR_REC_SIZE];
    bool published, rec_durable, rec_failed, undo_failed;
    unsigned rec_call;
    uint64_t slot;
    int ret;

    snap_restore(run, base);
    cur = gen_of(run, s, data);
    slot = CPR_SLOT_OFFSET(cpr_slot_for(cur.gen));
    /* Before the first save there is no file: the slot will be zeros. */
    memset(before, 0, sizeof(before));
    if (cpr_sim.size) {
        memcpy(before, cpr_sim.dur + slot, sizeof(before));
    }
    snprintf(what, sizeof(what), "save \"%s\" (gen %llu), %s flush %u of "
             "%u failing, promote %s then %s", s->name,
             (unsigned long long)cur.gen, sticky ? "sticky from" :
             "transient at", k, n, promote_name[promote],
             promote_name[then]);
    cpr_sim.fail_at = base->sim.persist_calls + k;
    cpr_sim.fail_sticky = sticky;
    cpr_sim.fail_promote = promote;
    run->then = then;
    run->calls = run->failed = 0;
    run->e = expect(run, s, &cur);
    run->check_persists = false;
    ret = save(run, s, data, &err);
    cpr_sim.fail_at = 0;
    run->st.saves++;
    published = ret == 0 && (s->end == COMMIT || s->end == INVALIDATE);

    /* (1) */
    CHECK(run, ret == (run->failed ? -1 : 0), "%s: returned %d after %u "
          "failed flushes", what, ret, run->failed);
    if (ret < 0) {
        size_t plen = strlen(run->path);

        CHECK(run, err && !strncmp(err, run->path, plen) &&
              !strncmp(err + plen, ": ", 2), "%s: message \"%s\" does not "
              "name the file", what, err ? err : "(none)");
        run->st.failed_ret++;
    } else {
        CHECK(run, k > n && !err, "%s: succeeded", what);
        run->st.armed_ok++;
    }
    free(err);
    /*
     * Inside commit the flushes are the payload's (commit only), the
     * record's, then the undo's only if the record's failed (I3, I4).
     * Nothing runs after a failure but that undo.
     */
    rec_call = s->end == COMMIT ? 2 : 1;
    rec_failed = run->failed && run->fail_phase == COMMITTING &&
                 run->fail_call == rec_call;
    undo_failed = rec_failed && run->commit_calls == rec_call + 1 &&
                  run->last_failed;
    if (run->failed) {
        run->st.injected++;
        run->st.transient += !sticky;
        run->st.sticky += sticky;
        run->st.early += run->fail_phase != COMMITTING;
        run->st.payload += run->fail_phase == COMMITTING &&
                           run->fail_call < rec_call;
        run->st.record += rec_failed;
        run->st.undo_failed += undo_failed;
        CHECK(run, run->calls == k + rec_failed, "%s: %u flushes ran", what,
              run->calls);
    }
    /* The media kept (some of) the new record only if the undo failed. */
    rec_durable = memcmp(cpr_sim.dur + slot, before, sizeof(before)) != 0;
    run->st.rec_durable += !published && rec_durable;
    CHECK(run, published || !rec_durable || undo_failed, "%s: the undo's "
          "flush succeeded, yet the media holds a changed record slot", what);

    /* (2) */
    check_boot(run, published ? &cur : &run->last, what);
    if (published) {
        run->st.boot_new++;
    } else if (run->last.gen && !run->last.inval) {
        run->st.boot_old++;
    }

    /* (3) */
    run->e.committing = published;
    run->e.committed = published;
    if (!published && rec_durable) {
        run->e.stale = run->e.cur;
        run->e.stale_invalidates = cur.inval;
        stale = cur;
    }
    crash_check_point(run->c, &run->e, "after the failed save");
    if (published) {
        run->last = cur;
    }

    /* (4) */
    cur = gen_of(run, &recovery, run->recovery);
    run->e = expect(run, &recovery, &cur);
    run->e.stale = (CrashGen){ stale.gen, stale.data, stale.len };
    run->e.stale_invalidates = stale.inval;
    run->check_persists = true;
    err = NULL;
    ret = save(run, &recovery, run->recovery, &err);
    run->check_persists = false;
    CHECK(run, ret == 0, "%s: the next save failed: %s", what,
          err ? err : "?");
    free(err);
    check_boot(run, &cur, what);
    run->e.committed = true;
    run->e.stale.gen = 0;
    crash_check_point(run->c, &run->e, "after the next save");
    run->st.recovered += ret == 0;
}

static void fill(CrashChecker *c, uint8_t *buf, uint64_t len)
{
    uint64_t r = 0;

    for (uint64_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            r = crash_rand(c);
        }
        buf[i] = (uint8_t)(r >> (i % 8 * 8));
    }
}

static int run_mode(bool pmem, bool undo_lost, const char *dir,
                    uint64_t seed)
{
    static const CprSimPromote promotes[] = {
        CPR_SIM_PROMOTE_NONE, CPR_SIM_PROMOTE_ALL, CPR_SIM_PROMOTE_SOME,
    };
    Run run = { .pmem = pmem };
    const CrashStats *cs;
    struct timespec t0, t1;
    char img[600];
    Snap base, next;
    double secs;
    int fails;

    snprintf(run.path, sizeof(run.path), "%s/flush-fail-%d-%s.img", dir,
             (int)getpid(), pmem ? "pmem" : "msync");
    snprintf(img, sizeof(img), "%s.crash", run.path);
    unlink(run.path);
    run.c = crash_checker_new(img, seed, RANDOM_SUBSETS);
    cpr_sim.hook = on_point;
    cpr_sim.opaque = &run;
    cpr_sim_reset(pmem);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run.recovery = malloc(RECOVERY_LEN);
    if (!run.recovery) {
        die("malloc", NULL);
    }
    fill(run.c, run.recovery, RECOVERY_LEN);
    /* The file as the first save finds it: created by that save. */
    snap_take(&base, &run.last);
    for (size_t i = 0; i < NR_SAVES; i++) {
        const Save *s = &saves[i];
        uint8_t *data = malloc(s->len ? s->len : 1);
        unsigned calls0 = cpr_sim.persist_calls, n;
        char *err = NULL;
        Gen cur;

        if (!data) {
            die("malloc", NULL);
        }
        fill(run.c, data, s->len);
        if (s->gaps) {
            memset(data + s->len / 2, 0, 10000);
        }
        run.data[i] = data;
        /* The sequence itself, without failures: how many flushes. */
        cur = gen_of(&run, s, data);
        run.e = expect(&run, s, &cur);
        if (save(&run, s, data, &err) < 0) {
            die(s->name, err);
        }
        n = cpr_sim.persist_calls - calls0;
        if (s->end == COMMIT || s->end == INVALIDATE) {
            run.last = cur;
        }
        snap_take(&next, &run.last);
        /*
         * Every flush failing, in every promote mode, transient and
         * sticky; with a sticky failure also the device that wrote all of
         * the failed record and then nothing more (none of the undo).
         * And once armed past the last flush.
         */
        for (unsigned k = 1; n && k <= n + 1; k++) {
            for (size_t p = 0; p < 4; p++) {
                for (int sticky = 0; sticky < 2; sticky++) {
                    if ((k > n && (p || sticky)) || (p == 3 && !sticky) ||
                        (p == 3) != undo_lost) {
                        continue;
                    }
                    scenario(&run, s, data, &base, n, k,
                             p < 3 ? promotes[p] : CPR_SIM_PROMOTE_ALL,
                             p < 3 ? promotes[p] : CPR_SIM_PROMOTE_NONE,
                             sticky);
                    run.st.points += k <= n;
                }
            }
        }
        snap_restore(&run, &next);
        snap_free(&base);
        base = next;
    }
    snap_free(&base);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    cs = crash_stats(run.c);
    printf("flush failures [%s%s]: %u failure points (%u transient, "
           "%u sticky; %u before commit, %u payload flushes, %u record "
           "flushes, %u undo flushes failed too), %u saves returned -1, "
           "%u with the failure armed past their last flush returned 0; "
           "same boot: %u loaded the previous generation, %u the new one, "
           "%u refused as expected; media kept the failed record %u "
           "times; %u next saves committed; %u check failures\n",
           pmem ? "pmem, 8-byte words" : "msync, 4 KiB pages",
           undo_lost ? ", record written, undo lost" : "", run.st.injected,
           run.st.transient, run.st.sticky, run.st.early, run.st.payload,
           run.st.record, run.st.undo_failed, run.st.failed_ret,
           run.st.armed_ok, run.st.boot_old, run.st.boot_new,
           run.st.boot_refused, run.st.rec_durable, run.st.recovered,
           run.st.errors);
    printf("crash images [%s]: %llu checked at %llu crash points, %llu "
           "accepted (previous: %llu, new: %llu, failed save's: %llu), "
           "%llu refused (%llu before the first commit, %llu invalidated), "
           "%llu torn accepted, %llu wrongly refused; %.1f s\n",
           pmem ? "pmem" : "msync",
           (unsigned long long)cs->images, (unsigned long long)cs->points,
           (unsigned long long)(cs->acc_old + cs->acc_new + cs->acc_stale),
           (unsigned long long)cs->acc_old, (unsigned long long)cs->acc_new,
           (unsigned long long)cs->acc_stale,
           (unsigned long long)(cs->refused_ok + cs->refused_inval),
           (unsigned long long)cs->refused_ok,
           (unsigned long long)cs->refused_inval,
           (unsigned long long)cs->torn, (unsigned long long)cs->refused_bad,
           secs);
    /* Implausible counts mean the failures were not where we think. */
    fails = run.st.errors || cs->torn || cs->refused_bad ||
            run.st.injected != run.st.points || run.st.injected == 0 ||
            !run.st.payload || !run.st.record || !run.st.sticky ||
            run.st.failed_ret != run.st.injected ||
            run.st.recovered != run.st.saves || !run.st.boot_old ||
            !cs->acc_old || !cs->acc_new;
    if (undo_lost) {
        /* The media must really have kept whole failed records. */
        fails |= !run.st.rec_durable || !cs->acc_stale;
    } else {
        fails |= !run.st.transient || !run.st.armed_ok;
    }
    crash_checker_free(run.c);
    unlink(run.path);
    cpr_sim_reset(pmem);
    for (size_t i = 0; i < NR_SAVES; i++) {
        free(run.data[i]);
    }
    free(run.recovery);
    return fails;
}

int main(int argc, char **argv)
{
    const char *dir = getenv("CPR_TEST_DIR");
    const char *s = getenv("CPR_CRASH_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : 20240611;
    bool undo_lost = false;
    int i, fails = 0;

    dir = dir && *dir ? dir : "/dev/shm";
    printf("seed %llu\n", (unsigned long long)seed);
    if (argc > 1 && !strcmp(argv[1], "--undo-lost")) {
        undo_lost = true;
        argc--, argv++;
    }
    if (argc < 2) {
        fails |= run_mode(true, undo_lost, dir, seed);
        fails |= run_mode(false, undo_lost, dir, seed);
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "pmem") && strcmp(argv[i], "msync")) {
            fprintf(stderr, "usage: %s [--undo-lost] [pmem|msync]...\n",
                    argv[0]);
            return 2;
        }
        fails |= run_mode(!strcmp(argv[i], "pmem"), undo_lost, dir, seed);
    }
    cpr_sim_free();
    return fails ? 1 : 0;
}
