/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "crash-check.h"
#include "persist-sim.h"
#include "reader.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_REPORTS 20

struct CrashChecker {
    char *path;
    int fd;
    uint8_t *map;               /* the image file, shared with the reader */
    uint64_t size, epoch;       /* model state the image holds */
    uint8_t *sel;               /* chosen flag per pending unit */
    size_t sel_cap;
    uint8_t *buf;               /* read-back buffer */
    uint64_t rng;
    unsigned random_subsets;
    CrashStats st;
};

enum { SUB_NONE, SUB_ALL, SUB_RECORD, SUB_NOT_RECORD, SUB_RANDOM };
static const char *const sub_name[] = {
    "none", "all", "record only", "all but record", "random",
};

#define READ_CHUNK (1u << 20)

static void die(const char *what)
{
    perror(what);
    exit(2);
}

CrashChecker *crash_checker_new(const char *path, uint64_t seed,
                                unsigned random_subsets)
{
    CrashChecker *c = calloc(1, sizeof(*c));

    if (!c || !(c->path = strdup(path)) || !(c->buf = malloc(READ_CHUNK))) {
        die("calloc");
    }
    c->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (c->fd < 0) {
        die(path);
    }
    c->rng = seed | 1;
    c->random_subsets = random_subsets;
    c->epoch = UINT64_MAX;
    return c;
}

void crash_checker_free(CrashChecker *c)
{
    if (c->map) {
        munmap(c->map, c->size);
    }
    close(c->fd);
    unlink(c->path);
    free(c->path);
    free(c->sel);
    free(c->buf);
    free(c);
}

const CrashStats *crash_stats(const CrashChecker *c)
{
    return &c->st;
}

/* xorshift64*: deterministic per seed, fast enough for per-unit picks. */
uint64_t crash_rand(CrashChecker *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1Dull;
}

/* Make the image file hold exactly the durable view. */
static void sync_image(CrashChecker *c)
{
    if (c->size != cpr_sim.size) {
        if (c->map) {
            munmap(c->map, c->size);
        }
        c->size = cpr_sim.size;
        if (ftruncate(c->fd, (off_t)c->size) < 0) {
            die("ftruncate");
        }
        c->map = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      c->fd, 0);
        if (c->map == MAP_FAILED) {
            die("mmap");
        }
        c->epoch = UINT64_MAX;
    }
    if (c->epoch != cpr_sim.epoch) {
        memcpy(c->map, cpr_sim.dur, c->size);
        c->epoch = cpr_sim.epoch;
    }
}

static bool in_record(const CrashExpect *e, uint64_t u)
{
    uint64_t off = u * cpr_sim.unit;

    return off < e->slot_off + CPR_REC_SIZE && off + cpr_sim.unit > e->slot_off;
}

/* Fill c->sel for one subset kind; returns how many units it picked. */
static size_t choose(CrashChecker *c, const CrashExpect *e, int kind,
                     unsigned nth)
{
    size_t i, n = 0, np = cpr_sim.npending;
    /* Random subsets alternate between independent picks (any order of
     * writeback) and a prefix in store order (writeback in order). */
    uint64_t q = crash_rand(c) >> 40, cut = np ? crash_rand(c) % np : 0;

    for (i = 0; i < np; i++) {
        uint64_t u = cpr_sim.pending[i];
        bool pick;

        switch (kind) {
        case SUB_NONE: pick = false; break;
        case SUB_ALL: pick = true; break;
        case SUB_RECORD: pick = in_record(e, u); break;
        case SUB_NOT_RECORD: pick = !in_record(e, u); break;
        default:
            pick = nth % 2 ? i < cut : (crash_rand(c) >> 40) < q;
        }
        c->sel[i] = pick;
        n += pick;
    }
    return n;
}

static void apply(CrashChecker *c, const uint8_t *from)
{
    size_t i, unit = cpr_sim.unit;

    for (i = 0; i < cpr_sim.npending; i++) {
        if (c->sel[i]) {
            uint64_t off = cpr_sim.pending[i] * unit;

            memcpy(c->map + off, from + off, unit);
        }
    }
}

static bool stream_is(CrashChecker *c, CprReader *r, const CrashGen *g)
{
    uint64_t off = 0;
    char *err = NULL;
    ssize_t n;

    if (cpr_reader_record(r)->stream_len != g->len) {
        return false;
    }
    while ((n = cpr_reader_read(r, c->buf, READ_CHUNK, &err)) > 0) {
        if (off + (uint64_t)n > g->len ||
            memcmp(c->buf, g->data + off, (size_t)n)) {
            return false;
        }
        off += (uint64_t)n;
    }
    free(err);
    return n == 0 && off == g->len;
}

static void report(CrashChecker *c, const CrashExpect *e, const char *where,
                   int kind, size_t n, const char *what)
{
    if (c->st.refused_bad + c->st.torn <= MAX_REPORTS) {
        fprintf(stderr, "FAIL: save \"%s\" (gen %llu, last committed %llu), "
                "%s, subset %s (%zu of %zu units): %s\n", e->save,
                (unsigned long long)e->cur.gen,
                (unsigned long long)e->old.gen, where, sub_name[kind], n,
                cpr_sim.npending, what);
    }
}

static void verdict(CrashChecker *c, const CrashExpect *e, const char *where,
                    int kind, size_t n)
{
    char *err = NULL;
    CprReader *r = cpr_reader_open(c->path, &err);
    char msg[160];
    uint64_t gen;

    c->st.images++;
    if (!r) {
        bool inval = (e->old_invalidated && !e->committed) ||
                     (e->committing && e->cur_invalidates) ||
                     (e->stale.gen && e->stale_invalidates);

        if (e->old.gen == 0 && !inval && !e->committed) {
            c->st.refused_ok++;
        } else if (inval && strstr(err, "was invalidated")) {
            c->st.refused_inval++;
        } else {
            c->st.refused_bad++;
            report(c, e, where, kind, n, err);
        }
        free(err);
        return;
    }
    gen = cpr_reader_record(r)->generation;
    if (e->old.gen && !e->old_invalidated && !e->committed &&
        gen == e->old.gen && stream_is(c, r, &e->old)) {
        c->st.acc_old++;
    } else if (e->committing && !e->cur_invalidates && gen == e->cur.gen &&
               stream_is(c, r, &e->cur)) {
        c->st.acc_new++;
    } else if (e->stale.gen && !e->stale_invalidates &&
               gen == e->stale.gen && stream_is(c, r, &e->stale)) {
        c->st.acc_stale++;
    } else {
        c->st.torn++;
        snprintf(msg, sizeof(msg), "accepted generation %llu with a wrong "
                 "stream (%llu bytes)", (unsigned long long)gen,
                 (unsigned long long)cpr_reader_record(r)->stream_len);
        report(c, e, where, kind, n, msg);
    }
    cpr_reader_close(r);
}

void crash_check_point(CrashChecker *c, const CrashExpect *e,
                       const char *where)
{
    unsigned kinds = SUB_RANDOM + c->random_subsets, k;

    c->st.points++;
    sync_image(c);
    if (c->sel_cap < cpr_sim.npending) {
        c->sel_cap = cpr_sim.npending;
        c->sel = realloc(c->sel, c->sel_cap);
        if (!c->sel) {
            die("realloc");
        }
    }
    for (k = 0; k < kinds; k++) {
        int kind = k < SUB_RANDOM ? (int)k : SUB_RANDOM;
        size_t n = choose(c, e, kind, k);

        /* Nothing dirty: one image.  Else skip repeats of none/all. */
        if (k > SUB_NONE &&
            (n == 0 || (k > SUB_ALL && n == cpr_sim.npending))) {
            continue;
        }
        apply(c, cpr_sim.vol);
        verdict(c, e, where, kind, n);
        apply(c, cpr_sim.dur);
    }
}
