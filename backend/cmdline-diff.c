/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The option-by-option difference between two command lines
 * (cmdline.h): both split into units, grouped by option in the order
 * options first appear, each group paired (cmdline-pair.c) into lines.
 */
#include "cmdline-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void cpr_cmdline_add_line(Ctx *c, const char *fmt, ...)
{
    CprCmdlineDiff *d = c->diff;
    char *line = NULL;
    va_list ap;

    if (c->oom) {
        return;
    }
    if (d->nr == c->lines_cap) {
        size_t cap = c->lines_cap ? c->lines_cap * 2 : 16;
        char **nl = realloc(d->lines, cap * sizeof(*nl));

        if (!nl) {
            c->oom = true;
            return;
        }
        d->lines = nl;
        c->lines_cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0) {
        line = NULL;
    }
    va_end(ap);
    if (!line) {
        c->oom = true;
        return;
    }
    d->lines[d->nr++] = line;
}

/* "-name value", "-name" or, for a positional argument, "value". */
void cpr_cmdline_add_unit(Ctx *c, char sign, const Unit *u)
{
    if (!*u->name) {
        cpr_cmdline_add_line(c, "%c %s", sign, u->value);
    } else if (u->value) {
        cpr_cmdline_add_line(c, "%c -%s %s", sign, u->name, u->value);
    } else {
        cpr_cmdline_add_line(c, "%c -%s", sign, u->name);
    }
}

void cpr_cmdline_add_change(Ctx *c, const Unit *a, const Unit *b)
{
    if (!*a->name) {
        cpr_cmdline_add_line(c, "~ %s -> %s", a->value, b->value);
    } else {
        cpr_cmdline_add_line(c, "~ -%s %s -> %s", a->name,
                             a->value ? a->value : "",
                             b->value ? b->value : "");
    }
}

/* The same unit elsewhere among those of its option. */
void cpr_cmdline_add_moved(Ctx *c, const Unit *a)
{
    if (!*a->name) {
        cpr_cmdline_add_line(c, "~ %s: order changed", a->value);
    } else {
        cpr_cmdline_add_line(c, "~ -%s%s%s: order changed", a->name,
                             a->value ? " " : "", a->value ? a->value : "");
    }
}

static int by_name(const void *x, const void *y)
{
    const Ref *a = x, *b = y;
    int d = strcmp(a->u->name, b->u->name);

    return d ? d : (a->pos > b->pos) - (a->pos < b->pos);
}

static Ref *sorted(Ctx *c, const Units *us)
{
    Ref *r = malloc((us->n + 1) * sizeof(*r));

    if (!r) {
        c->oom = true;
        return NULL;
    }
    for (size_t i = 0; i < us->n; i++) {
        r[i] = (Ref){ &us->u[i], i };
    }
    qsort(r, us->n, sizeof(*r), by_name);
    return r;
}

/* The units of one option on both sides, each in command-line order. */
typedef struct Group {
    const Ref *a, *b;
    size_t na, nb;
    size_t first;               /* where the option first appears */
} Group;

static int by_first(const void *x, const void *y)
{
    const Group *a = x, *b = y;

    return (a->first > b->first) - (a->first < b->first);
}

/* The keyed units of @g's side (@r, @n), in order, into @out. */
static size_t keyed(const Ref *r, size_t n, bool with_id, Ref *out)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (!r[i].u->id == !with_id) {
            out[k] = (Ref){ r[i].u, k };
            k++;
        }
    }
    return k;
}

/* One option: its keyed units by id, then the others in order. */
static void diff_option(Ctx *c, const Group *g)
{
    const char *name = (g->na ? g->a : g->b)->u->name;
    Ref *ka = malloc((g->na + 1) * sizeof(*ka));
    Ref *kb = malloc((g->nb + 1) * sizeof(*kb));
    size_t na, nb;

    if (!ka || !kb) {
        c->oom = true;
    } else {
        na = keyed(g->a, g->na, true, ka);
        nb = keyed(g->b, g->nb, true, kb);
        cpr_cmdline_diff_keyed(c, name, ka, na, kb, nb);
        na = keyed(g->a, g->na, false, ka);
        nb = keyed(g->b, g->nb, false, kb);
        cpr_cmdline_diff_ordered(c, ka, na, kb, nb);
    }
    free(ka);
    free(kb);
}

/* Option by option, in the order they first appear (the saved side's
 * first, then the ones only the current side has). */
static void diff_all(Ctx *c, const Units *a, const Units *b)
{
    Ref *sa = sorted(c, a), *sb = sorted(c, b);
    Group *g = malloc((a->n + b->n + 1) * sizeof(*g));
    size_t ng = 0, i = 0, j = 0;

    if (c->oom || !g) {
        c->oom = true;
        goto out;
    }
    while (i < a->n || j < b->n) {
        int d = i == a->n ? 1 : j == b->n ? -1 :
                strcmp(sa[i].u->name, sb[j].u->name);
        size_t ei = i, ej = j;

        if (d <= 0) {
            while (ei < a->n && !strcmp(sa[ei].u->name, sa[i].u->name)) {
                ei++;
            }
        }
        if (d >= 0) {
            while (ej < b->n && !strcmp(sb[ej].u->name, sb[j].u->name)) {
                ej++;
            }
        }
        g[ng++] = (Group){ sa + i, sb + j, ei - i, ej - j,
                           ei > i ? sa[i].pos : a->n + sb[j].pos };
        i = ei;
        j = ej;
    }
    qsort(g, ng, sizeof(*g), by_first);
    for (size_t k = 0; k < ng && !c->oom; k++) {
        diff_option(c, &g[k]);
    }
out:
    free(sa);
    free(sb);
    free(g);
}

static const char *or_unknown(const char *s)
{
    return s && *s ? s : "(unknown)";
}

int cpr_cmdline_diff(const char *saved, size_t saved_len,
                     const char *saved_machine, const char *saved_cpu,
                     const char *now, size_t now_len,
                     const char *now_machine, const char *now_cpu,
                     CprCmdlineDiff *diff)
{
    Ctx c = { .diff = diff, .lcs_cells = MAX_LCS_CELLS };
    Units a, b;
    bool ok_a, ok_b;

    memset(diff, 0, sizeof(*diff));
    c.machine_resolved = saved_machine && *saved_machine && now_machine &&
                         *now_machine;
    c.cpu_resolved = saved_cpu && *saved_cpu && now_cpu && *now_cpu;
    if (strcmp(saved_machine ? saved_machine : "",
               now_machine ? now_machine : "") != 0) {
        cpr_cmdline_add_line(&c, "~ machine %s -> %s",
                             or_unknown(saved_machine),
                             or_unknown(now_machine));
    }
    if (strcmp(saved_cpu ? saved_cpu : "", now_cpu ? now_cpu : "") != 0) {
        cpr_cmdline_add_line(&c, "~ cpu %s -> %s", or_unknown(saved_cpu),
                             or_unknown(now_cpu));
    }
    /* The same bytes say the same (a restore's usual case): nothing to
     * parse (~30 us of in_open in a QEMU that just started). */
    if (saved_len != now_len || (now_len && memcmp(saved, now, now_len))) {
        /* Parse failures leave what was parsed, freed below. */
        ok_a = cpr_cmdline_units(&c, saved, saved_len, &a);
        ok_b = cpr_cmdline_units(&c, now, now_len, &b);
        if (ok_a && ok_b) {
            diff_all(&c, &a, &b);
        }
        cpr_cmdline_units_free(&a);
        cpr_cmdline_units_free(&b);
    }
    if (c.oom) {
        cpr_cmdline_diff_free(diff);
        return -1;
    }
    return 0;
}

void cpr_cmdline_diff_free(CprCmdlineDiff *diff)
{
    for (size_t i = 0; i < diff->nr; i++) {
        free(diff->lines[i]);
    }
    free(diff->lines);
    diff->lines = NULL;
    diff->nr = 0;
}
