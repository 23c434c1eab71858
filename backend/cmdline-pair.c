/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pairing the units of one option across the two command lines: keyed
 * units by id (and, for ordered options, their order), the others in
 * order, as a longest common subsequence within a budget.
 */
#include "cmdline-internal.h"

#include <stdlib.h>

static int by_id(const void *x, const void *y)
{
    const Ref *a = x, *b = y;
    int d = strcmp(a->u->id, b->u->id);

    return d ? d : (a->pos > b->pos) - (a->pos < b->pos);
}

/* At most this many ids of an "order of" line per side. */
#define MAX_ORDER_IDS 32

/* Those of the @n ids of @k with @both set, in order, at most
 * MAX_ORDER_IDS of them, joined by ", "; NULL if out of memory. */
static char *id_list(const Ref *k, size_t n, const bool *both)
{
    size_t cap = sizeof(", ..."), len = 0, shown = 0;
    char *s;

    for (size_t i = 0; i < n && shown < MAX_ORDER_IDS; i++) {
        if (both[i]) {
            cap += strlen(k[i].u->id) + 2;
            shown++;
        }
    }
    if (!(s = malloc(cap))) {
        return NULL;
    }
    shown = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;

        if (!both[i]) {
            continue;
        }
        if (shown++ == MAX_ORDER_IDS) {
            memcpy(s + len, ", ...", 5);
            len += 5;
            break;
        }
        l = strlen(k[i].u->id);
        if (len) {
            memcpy(s + len, ", ", 2);
            len += 2;
        }
        memcpy(s + len, k[i].u->id, l);
        len += l;
    }
    s[len] = 0;
    return s;
}

/* The ids present on both sides (@a_both, @b_both), in the same order
 * on both, or else one line with them, in each side's order. */
static void diff_order(Ctx *c, const char *name, const Ref *ka, size_t na,
                       const bool *a_both, const Ref *kb, size_t nb,
                       const bool *b_both)
{
    size_t i = 0, j = 0;
    char *sa, *sb;

    for (;;) {
        while (i < na && !a_both[i]) {
            i++;
        }
        while (j < nb && !b_both[j]) {
            j++;
        }
        if (i == na || j == nb) {
            if (i == na && j == nb) {
                return;         /* the same order */
            }
            break;
        }
        if (strcmp(ka[i].u->id, kb[j].u->id) != 0) {
            break;
        }
        i++, j++;
    }
    sa = id_list(ka, na, a_both);
    sb = id_list(kb, nb, b_both);
    if (!sa || !sb) {
        c->oom = true;
    } else {
        cpr_cmdline_add_line(c, "~ order of -%s id=%s -> %s", name, sa, sb);
    }
    free(sa);
    free(sb);
}

/*
 * Keyed units of one option (@ka, @kb, in order): matched by id, the
 * k-th of an id on one side with the k-th on the other.
 */
void cpr_cmdline_diff_keyed(Ctx *c, const char *name, const Ref *ka,
                            size_t na, const Ref *kb, size_t nb)
{
    Ref *sa = malloc((na + 1) * sizeof(*sa)), *sb = malloc((nb + 1) *
                                                          sizeof(*sb));
    size_t *match = malloc((na + 1) * sizeof(*match));
    bool *a_both = calloc(na + 1, 1), *b_both = calloc(nb + 1, 1);
    bool *b_matched = calloc(nb + 1, 1);
    size_t i = 0, j = 0;

    if (!sa || !sb || !match || !a_both || !b_both || !b_matched) {
        c->oom = true;
        goto out;
    }
    memcpy(sa, ka, na * sizeof(*sa));
    memcpy(sb, kb, nb * sizeof(*sb));
    qsort(sa, na, sizeof(*sa), by_id);
    qsort(sb, nb, sizeof(*sb), by_id);
    for (size_t k = 0; k < na; k++) {
        match[k] = SIZE_MAX;
    }
    while (i < na || j < nb) {
        int d = i == na ? 1 : j == nb ? -1 : strcmp(sa[i].u->id, sb[j].u->id);
        size_t ei = i, ej = j;

        if (d < 0) {
            i++;
            continue;
        }
        if (d > 0) {
            j++;
            continue;
        }
        while (ei < na && !strcmp(sa[ei].u->id, sa[i].u->id)) {
            ei++;
        }
        while (ej < nb && !strcmp(sb[ej].u->id, sb[j].u->id)) {
            ej++;
        }
        for (size_t x = i; x < ei; x++) {
            a_both[sa[x].pos] = true;
            if (j + (x - i) < ej) {
                match[sa[x].pos] = sb[j + (x - i)].pos;
                b_matched[sb[j + (x - i)].pos] = true;
            }
        }
        for (size_t y = j; y < ej; y++) {
            b_both[sb[y].pos] = true;
        }
        i = ei;
        j = ej;
    }
    for (size_t k = 0; k < na; k++) {
        if (match[k] == SIZE_MAX) {
            cpr_cmdline_add_unit(c, '-', ka[k].u);
        } else if (!cpr_cmdline_same_norm(ka[k].u, kb[match[k]].u)) {
            cpr_cmdline_add_change(c, ka[k].u, kb[match[k]].u);
        }
    }
    for (size_t k = 0; k < nb; k++) {
        if (!b_matched[k]) {
            cpr_cmdline_add_unit(c, '+', kb[k].u);
        }
    }
    if (cpr_cmdline_is_ordered(name)) {
        diff_order(c, name, ka, na, a_both, kb, nb, b_both);
    }
out:
    free(sa);
    free(sb);
    free(match);
    free(a_both);
    free(b_both);
    free(b_matched);
}

/*
 * Unkeyed units of one option (@ua, @ub, in order): in order (a longest
 * common subsequence), so that a device inserted before another shows as
 * one addition.  What is left on both sides pairs up as changes
 * ("~ -m 512M -> 1G").
 */
void cpr_cmdline_diff_ordered(Ctx *c, const Ref *ua, size_t na,
                              const Ref *ub, size_t nb)
{
    const Unit **ra = malloc((na + 1) * sizeof(*ra));
    const Unit **rb = malloc((nb + 1) * sizeof(*rb));
    size_t nra = 0, nrb = 0, i, j, cells = (na + 1) * (nb + 1);
    uint32_t *t = NULL;

    if (!ra || !rb) {
        c->oom = true;
        goto out;
    }
    if (cells <= c->lcs_cells && (t = calloc(cells, sizeof(*t)))) {
        c->lcs_cells -= cells;
#define T(x, y) t[(x) * (nb + 1) + (y)]
        for (i = na; i-- > 0;) {
            for (j = nb; j-- > 0;) {
                T(i, j) = cpr_cmdline_same_norm(ua[i].u, ub[j].u) ?
                          T(i + 1, j + 1) + 1 :
                          (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) :
                           T(i, j + 1));
            }
        }
        for (i = 0, j = 0; i < na || j < nb;) {
            if (i < na && j < nb && cpr_cmdline_same_norm(ua[i].u, ub[j].u)) {
                i++, j++;
            } else if (j == nb || (i < na && T(i + 1, j) >= T(i, j + 1))) {
                ra[nra++] = ua[i++].u;
            } else {
                rb[nrb++] = ub[j++].u;
            }
        }
#undef T
    } else {
        /* Too long for the table: position by position. */
        for (i = 0; i < na || i < nb; i++) {
            if (i < na && i < nb && cpr_cmdline_same_norm(ua[i].u, ub[i].u)) {
                continue;
            }
            if (i < na) {
                ra[nra++] = ua[i].u;
            }
            if (i < nb) {
                rb[nrb++] = ub[i].u;
            }
        }
    }
    for (i = 0; i < nra || i < nrb; i++) {
        if (i < nra && i < nrb && cpr_cmdline_same_norm(ra[i], rb[i])) {
            cpr_cmdline_add_moved(c, ra[i]);
        } else if (i < nra && i < nrb) {
            cpr_cmdline_add_change(c, ra[i], rb[i]);
        } else if (i < nra) {
            cpr_cmdline_add_unit(c, '-', ra[i]);
        } else {
            cpr_cmdline_add_unit(c, '+', rb[i]);
        }
    }
out:
    free(t);
    free(ra);
    free(rb);
}
