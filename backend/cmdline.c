/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cmdline.h"
#include "hash.h"
#include "vmdesc.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * QEMU's options that take no argument: the DEF()s without HAS_ARG in
 * qemu-options.hx of QEMU 10.0.13 (the source scripts/test.sh builds);
 * every other option takes one, as in QEMU's lookup_opt().  Newer QEMUs
 * may add options: an unknown option is taken to have an argument,
 * which only matters if it has none and is followed by another option.
 */
static const char *const no_arg_options[] = {
    "help", "version", "mem-prealloc", "snapshot", "usb", "nographic",
    "full-screen", "win2k-hack", "no-fd-bootchk", "preconfig", "S", "s",
    "enable-kvm", "xen-attach", "xen-domid-restrict", "no-reboot",
    "no-shutdown", "daemonize", "only-migratable", "nodefaults",
    "semihosting", "old-param", "no-user-config", "enable-sync-profile",
    "perfmap", "jitdump",
};

/*
 * Options that may differ between the QEMU that saved a VM and the one
 * restoring it, because the guest cannot see them: where the monitors,
 * the migration and the logs go, how the process runs, how the display
 * is shown.  BINDING.md explains each.  Besides these: -global
 * migration.* (migration parameters are set per side), and, inside
 * -object, the mem-path= and prealloc*= properties of memory backends
 * (the RAM binding checks the file itself).
 */
static const char *const ignored_options[] = {
    "incoming", "qmp", "qmp-pretty", "monitor", "mon", "chardev",
    "pidfile", "daemonize", "D", "d", "trace", "msg", "name", "runas",
    "run-with", "chroot", "sandbox", "display", "vnc", "spice", "S",
    "qtest", "qtest-log", "L", "mem-prealloc",
};

/*
 * Options that create a guest device from a host character backend
 * (QEMU's vl.c: serial_parse, parallel_parse, debugcon_parse): the
 * device is compared (that there is one, and where among the others of
 * its option), not the backend ("-serial file:a.log" and "-serial
 * file:b.log" are the same port), as -chardev is ignored.
 */
static const char *const port_options[] = { "serial", "parallel", "debugcon" };

/* Matched by id= where they have one. */
static const char *const keyed_options[] = {
    "device", "object", "drive", "netdev",
};

/* Whose order among themselves changes what the guest sees (PCI slots,
 * drive indexes), even when each is matched by id. */
static const char *const ordered_options[] = { "device", "drive" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool in(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        /* The first byte first: called per unit, for several lists. */
        if (list[i][0] == name[0] && strcmp(list[i], name) == 0) {
            return true;
        }
    }
    return false;
}

bool cpr_cmdline_no_arg(const char *name)
{
    return in(no_arg_options, N(no_arg_options), name);
}

/* Each element of a QemuOpts-style "a,b=c,d" list (",," is a comma). */
typedef void (*ElemFn)(const char *elem, size_t len, size_t index,
                       void *opaque);

static void for_each_elem(const char *value, ElemFn fn, void *opaque)
{
    size_t start = 0, i = 0, index = 0;

    for (;;) {
        if (value[i] == ',' && value[i + 1] == ',') {
            i += 2;
            continue;
        }
        if (value[i] == ',' || value[i] == 0) {
            fn(value + start, i - start, index++, opaque);
            if (value[i] == 0) {
                return;
            }
            start = i + 1;
        }
        i++;
    }
}

static bool elem_is(const char *elem, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    return len >= n && memcmp(elem, prefix, n) == 0;
}

static void find_migration(const char *elem, size_t len, size_t index,
                           void *opaque)
{
    (void)index;
    if (len == strlen("driver=migration") &&
        elem_is(elem, len, "driver=migration")) {
        *(bool *)opaque = true;
    }
}

bool cpr_cmdline_ignored(const char *name, const char *value)
{
    bool migration = false;

    if (in(ignored_options, N(ignored_options), name)) {
        return true;
    }
    if (strcmp(name, "global") == 0 && value) {
        if (strncmp(value, "migration.", 10) == 0) {
            return true;
        }
        for_each_elem(value, find_migration, &migration);
        return migration;
    }
    return false;
}

/* ---- this process's command line -------------------------------------- */

static char *test_args;
static size_t test_len;
static bool test_set;

void cpr_cmdline_set_for_tests(const char *args, size_t len)
{
    free(test_args);
    test_args = NULL;
    test_len = 0;
    test_set = args != NULL;
    if (args) {
        test_args = malloc(len ? len : 1);
        if (test_args) {
            memcpy(test_args, args, len);
            test_len = len;
        }
    }
}

/* Cut @len back to what the description can hold, at an argument end. */
static size_t bound(const char *args, size_t len)
{
    size_t args_n = 0, end = 0;

    for (size_t i = 0; i < len && i < CPR_VMDESC_MAX_ARGV; i++) {
        if (args[i] == 0) {
            if (++args_n > CPR_VMDESC_MAX_ARGS) {
                break;
            }
            end = i + 1;
        }
    }
    return end;
}

/* The argument list @f holds, bounded (cpr_cmdline_own); closes @f. */
static int read_args(FILE *f, char **args, size_t *len)
{
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    int ret = -1;

    do {
        if (n == cap) {
            char *nb;

            if (cap >= CPR_VMDESC_MAX_ARGV) {
                break;
            }
            nb = realloc(buf, cap = cap ? cap * 2 : 4096);
            if (!nb) {
                goto out;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (!ferror(f)) {
        *args = buf;
        *len = bound(buf, n);
        buf = NULL;
        ret = 0;
    }
out:
    free(buf);
    fclose(f);
    return ret;
}

int cpr_cmdline_own(char **args, size_t *len)
{
    FILE *f;
    char *buf;

    *args = NULL;
    *len = 0;
    if (test_set) {
        buf = malloc(test_len ? test_len : 1);
        if (!buf) {
            return -1;
        }
        memcpy(buf, test_args, test_len);
        *args = buf;
        *len = bound(buf, test_len);
        return 0;
    }
    f = fopen("/proc/self/cmdline", "re");
    return f ? read_args(f, args, len) : -1;
}

int cpr_cmdline_read_at(int proc_fd, char **args, size_t *len)
{
    int fd = openat(proc_fd, "cmdline", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;

    *args = NULL;
    *len = 0;
    if (!f) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return read_args(f, args, len);
}

/* ---- parsing ------------------------------------------------------------ */

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

typedef struct Ctx {
    bool oom;
    CprCmdlineDiff *diff;
    size_t lines_cap;
    size_t lcs_cells;           /* what is left of the LCS tables' budget */
    bool machine_resolved;      /* both sides know their machine type */
    bool cpu_resolved;          /* and their CPU model */
} Ctx;

typedef struct Norm {
    const Ctx *c;
    const char *name;
    char *out;
    size_t len;
} Norm;

static void drop_elems(const char *elem, size_t len, size_t index,
                       void *opaque)
{
    Norm *nm = opaque;
    bool drop = false;

    if (strcmp(nm->name, "machine") == 0 && nm->c->machine_resolved) {
        /* The type ("q35" or type=q35): compared resolved, separately,
         * so that "-machine q35" and "-machine pc-q35-10.0" are equal
         * where both resolve to pc-q35-10.0. */
        drop = (index == 0 && !memchr(elem, '=', len)) ||
               elem_is(elem, len, "type=");
    } else if (strcmp(nm->name, "cpu") == 0 && nm->c->cpu_resolved) {
        drop = index == 0;      /* the model, likewise */
    } else if (strcmp(nm->name, "object") == 0) {
        drop = elem_is(elem, len, "mem-path=") ||
               elem_is(elem, len, "prealloc=") ||
               elem_is(elem, len, "prealloc-threads=") ||
               elem_is(elem, len, "prealloc-context=");
    }
    if (!drop) {
        if (nm->len) {
            nm->out[nm->len++] = ',';
        }
        memcpy(nm->out + nm->len, elem, len);
        nm->len += len;
        nm->out[nm->len] = 0;
    }
}

typedef struct IdFind {
    const char *id;
    size_t len;
} IdFind;

static void find_id(const char *elem, size_t len, size_t index, void *opaque)
{
    IdFind *f = opaque;

    (void)index;
    if (!f->id && elem_is(elem, len, "id=")) {
        f->id = elem + 3;
        f->len = len - 3;
    }
}

/* What of @u is compared: its norm (in us->store) and its id. */
static void fill_unit(const Ctx *c, Units *us, Unit *u)
{
    const char *v = u->value;
    Norm nm = { c, u->name, us->store + us->stored, 0 };
    IdFind f = { NULL, 0 };

    if (!v || in(port_options, N(port_options), u->name)) {
        /* A port's host side may change: the guest sees a port at this
         * position, or none ("-serial none" keeps its index). */
        u->norm = !v ? "" : strcmp(v, "none") ? "(a port)" : "none";
        u->norm_hash = XXH3_64bits(u->norm, strlen(u->norm));
        return;
    }
    /* Never longer than @v: elements are only dropped. */
    nm.out[0] = 0;
    for_each_elem(v, drop_elems, &nm);
    u->norm = nm.out;
    u->norm_hash = XXH3_64bits(nm.out, nm.len);
    us->stored += nm.len + 1;
    if (in(keyed_options, N(keyed_options), u->name)) {
        for_each_elem(v, find_id, &f);
        if (f.id) {
            char *id = us->store + us->stored;

            memcpy(id, f.id, f.len);
            id[f.len] = 0;
            u->id = id;
            us->stored += f.len + 1;
        }
    }
}

static void units_free(Units *us)
{
    free(us->u);
    free(us->names);
    free(us->store);
}

/*
 * Split @args into units (an option with its argument, or a positional
 * argument) the way QEMU's lookup_opt() does, dropping argv[0] and the
 * ignored options.  "--x" is "-x"; "-x=v" is "-x v"; "-M" is "-machine".
 */
static bool parse(Ctx *c, const char *args, size_t len, Units *us)
{
    const char **argv;
    size_t argc = 0, i, pos = 0;

    memset(us, 0, sizeof(*us));
    for (i = 0; i < len; i++) {
        argc += args[i] == 0;
    }
    argv = calloc(argc + 1, sizeof(*argv));
    us->u = calloc(argc + 1, sizeof(*us->u));
    /* Room for every "-x=v" name, NUL-terminated; and for each value's
     * norm and id, each at most as long as the value. */
    us->names = malloc(len + 1);
    us->store = malloc(2 * len + 1);
    if (!argv || !us->u || !us->names || !us->store) {
        free(argv);
        c->oom = true;
        return false;
    }
    for (i = 0; i < argc; i++) {
        argv[i] = args + pos;
        pos += strlen(args + pos) + 1;
    }
    pos = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *value = NULL;
        Unit *u;

        if (a[0] != '-' || a[1] == 0) {
            name = "";
            value = a;
        } else {
            name = a + 1 + (a[1] == '-');
            eq = strchr(name, '=');
            if (eq) {
                size_t n = (size_t)(eq - name);

                memcpy(us->names + pos, name, n);
                us->names[pos + n] = 0;
                value = eq + 1;
                name = us->names + pos;
                pos += n + 1;
            } else if (!cpr_cmdline_no_arg(name) && i + 1 < argc) {
                value = argv[++i];
            }
            if (strcmp(name, "M") == 0) {
                name = "machine";
            }
        }
        if (*name && cpr_cmdline_ignored(name, value)) {
            continue;
        }
        u = &us->u[us->n++];
        u->name = name;
        u->value = value;
        fill_unit(c, us, u);
    }
    free(argv);
    return true;
}

/* ---- the difference ----------------------------------------------------- */

static void add_line(Ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_line(Ctx *c, const char *fmt, ...)
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
static void add_unit(Ctx *c, char sign, const Unit *u)
{
    if (!*u->name) {
        add_line(c, "%c %s", sign, u->value);
    } else if (u->value) {
        add_line(c, "%c -%s %s", sign, u->name, u->value);
    } else {
        add_line(c, "%c -%s", sign, u->name);
    }
}

static void add_change(Ctx *c, const Unit *a, const Unit *b)
{
    if (!*a->name) {
        add_line(c, "~ %s -> %s", a->value, b->value);
    } else {
        add_line(c, "~ -%s %s -> %s", a->name, a->value ? a->value : "",
                 b->value ? b->value : "");
    }
}

/* The same unit elsewhere among those of its option. */
static void add_moved(Ctx *c, const Unit *a)
{
    if (!*a->name) {
        add_line(c, "~ %s: order changed", a->value);
    } else {
        add_line(c, "~ -%s%s%s: order changed", a->name, a->value ? " " : "",
                 a->value ? a->value : "");
    }
}

static bool same_norm(const Unit *a, const Unit *b)
{
    return a->norm_hash == b->norm_hash && strcmp(a->norm, b->norm) == 0;
}

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

static int by_name(const void *x, const void *y)
{
    const Ref *a = x, *b = y;
    int d = strcmp(a->u->name, b->u->name);

    return d ? d : (a->pos > b->pos) - (a->pos < b->pos);
}

static int by_id(const void *x, const void *y)
{
    const Ref *a = x, *b = y;
    int d = strcmp(a->u->id, b->u->id);

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
        add_line(c, "~ order of -%s id=%s -> %s", name, sa, sb);
    }
    free(sa);
    free(sb);
}

/*
 * Keyed units of one option (@ka, @kb, in order): matched by id, the
 * k-th of an id on one side with the k-th on the other.
 */
static void diff_keyed(Ctx *c, const char *name, const Ref *ka, size_t na,
                       const Ref *kb, size_t nb)
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
            add_unit(c, '-', ka[k].u);
        } else if (!same_norm(ka[k].u, kb[match[k]].u)) {
            add_change(c, ka[k].u, kb[match[k]].u);
        }
    }
    for (size_t k = 0; k < nb; k++) {
        if (!b_matched[k]) {
            add_unit(c, '+', kb[k].u);
        }
    }
    if (in(ordered_options, N(ordered_options), name)) {
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

/* Cells of the longest-common-subsequence tables, over all options:
 * beyond that, units are compared position by position. */
#define MAX_LCS_CELLS (1u << 20)

/*
 * Unkeyed units of one option (@ua, @ub, in order): in order (a longest
 * common subsequence), so that a device inserted before another shows as
 * one addition.  What is left on both sides pairs up as changes
 * ("~ -m 512M -> 1G").
 */
static void diff_ordered(Ctx *c, const Ref *ua, size_t na, const Ref *ub,
                         size_t nb)
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
                T(i, j) = same_norm(ua[i].u, ub[j].u) ?
                          T(i + 1, j + 1) + 1 :
                          (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) :
                           T(i, j + 1));
            }
        }
        for (i = 0, j = 0; i < na || j < nb;) {
            if (i < na && j < nb && same_norm(ua[i].u, ub[j].u)) {
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
            if (i < na && i < nb && same_norm(ua[i].u, ub[i].u)) {
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
        if (i < nra && i < nrb && same_norm(ra[i], rb[i])) {
            add_moved(c, ra[i]);
        } else if (i < nra && i < nrb) {
            add_change(c, ra[i], rb[i]);
        } else if (i < nra) {
            add_unit(c, '-', ra[i]);
        } else {
            add_unit(c, '+', rb[i]);
        }
    }
out:
    free(t);
    free(ra);
    free(rb);
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
        diff_keyed(c, name, ka, na, kb, nb);
        na = keyed(g->a, g->na, false, ka);
        nb = keyed(g->b, g->nb, false, kb);
        diff_ordered(c, ka, na, kb, nb);
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
        add_line(&c, "~ machine %s -> %s", or_unknown(saved_machine),
                 or_unknown(now_machine));
    }
    if (strcmp(saved_cpu ? saved_cpu : "", now_cpu ? now_cpu : "") != 0) {
        add_line(&c, "~ cpu %s -> %s", or_unknown(saved_cpu),
                 or_unknown(now_cpu));
    }
    /* Parse failures leave what was parsed, freed below. */
    ok_a = parse(&c, saved, saved_len, &a);
    ok_b = parse(&c, now, now_len, &b);
    if (ok_a && ok_b) {
        diff_all(&c, &a, &b);
    }
    units_free(&a);
    units_free(&b);
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
