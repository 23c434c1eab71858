/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the command-line sources share (cmdline.h is their interface):
 * the units an argument list splits into (cmdline-parse.c), the option
 * lists (cmdline-options.c), and a difference under way (cmdline-diff.c,
 * cmdline-pair.c).  Included by cmdline-*.c only.
 */
#ifndef CPR_CMDLINE_INTERNAL_H
#define CPR_CMDLINE_INTERNAL_H

#include "cmdline.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* An option with its argument, or a positional argument. */
typedef struct Unit {
    const char *name;           /* no dashes; "" for a positional argument */
    const char *value;          /* NULL: none */
    const char *norm;           /* what is compared */
    uint64_t norm_hash;         /* XXH3 of norm: most comparisons stop here */
    const char *id;             /* id= of a keyed option, or NULL */
} Unit;

/* One side's units; the strings they make live in two buffers, each at
 * most as long as the argument list. */
typedef struct Units {
    Unit *u;
    size_t n;
    char *names;                /* split "-x=v" names */
    char *store;                /* norms and ids */
    size_t stored;
} Units;

/* A difference under way: how to parse, where the lines go, budgets. */
typedef struct Ctx {
    bool oom;
    CprCmdlineDiff *diff;
    size_t lines_cap;
    size_t lcs_cells;           /* what is left of the LCS tables' budget */
    bool machine_resolved;      /* both sides know their machine type */
    bool cpu_resolved;          /* and their CPU model */
} Ctx;

/*
 * The units of one side, sorted: by option name (then position), so
 * that each option's units are one run; within a run of keyed units, by
 * id (then position).  Sorting both sides keeps the whole comparison at
 * O(n log n) whatever the image holds: no option scans the other
 * options' units.
 */
typedef struct Ref {
    const Unit *u;
    size_t pos;                 /* in the side's units, or in a run */
} Ref;

/* Cells of the longest-common-subsequence tables, over all options:
 * beyond that, units are compared position by position. */
#define MAX_LCS_CELLS (1u << 20)

/* ---- options (cmdline-options.c) ---- */

/* Each element of a QemuOpts-style "a,b=c,d" list (",," is a comma). */
typedef void (*ElemFn)(const char *elem, size_t len, size_t index,
                       void *opaque);
void cpr_cmdline_each_elem(const char *value, ElemFn fn, void *opaque);
bool cpr_cmdline_elem_is(const char *elem, size_t len, const char *prefix);

/* A port: its device compared, not its host backend. */
bool cpr_cmdline_is_port(const char *name);
/* Matched by id= where they have one. */
bool cpr_cmdline_is_keyed(const char *name);
/* Whose order among themselves the guest sees. */
bool cpr_cmdline_is_ordered(const char *name);

/* ---- units (cmdline-parse.c) ---- */

/*
 * Split @args into units (an option with its argument, or a positional
 * argument) the way QEMU's lookup_opt() does, dropping argv[0] and the
 * ignored options.  False (c->oom) if out of memory; free @us either way.
 */
bool cpr_cmdline_units(Ctx *c, const char *args, size_t len, Units *us);
void cpr_cmdline_units_free(Units *us);

static inline bool cpr_cmdline_same_norm(const Unit *a, const Unit *b)
{
    return a->norm_hash == b->norm_hash && strcmp(a->norm, b->norm) == 0;
}

/* ---- the difference's lines (cmdline-diff.c) ---- */

void cpr_cmdline_add_line(Ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "+ -name value" (@sign '+') or "- -name value" ('-'). */
void cpr_cmdline_add_unit(Ctx *c, char sign, const Unit *u);
/* "~ -name old -> new" */
void cpr_cmdline_add_change(Ctx *c, const Unit *a, const Unit *b);
/* "~ -name value: order changed" */
void cpr_cmdline_add_moved(Ctx *c, const Unit *a);

/* ---- pairing one option's units (cmdline-pair.c) ---- */

/* Keyed units (@ka, @kb, in order): the k-th of an id on one side with
 * the k-th on the other; then, for ordered options, their order. */
void cpr_cmdline_diff_keyed(Ctx *c, const char *name, const Ref *ka,
                            size_t na, const Ref *kb, size_t nb);
/* Unkeyed units (@ua, @ub, in order): in order (a longest common
 * subsequence); what is left pairs up as changes. */
void cpr_cmdline_diff_ordered(Ctx *c, const Ref *ua, size_t na,
                              const Ref *ub, size_t nb);

#endif
