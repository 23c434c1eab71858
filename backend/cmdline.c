/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cmdline.h"
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
        if (strcmp(list[i], name) == 0) {
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
    char *norm;                 /* what is compared */
    char *id;                   /* id= of a keyed option, or NULL */
    bool done;
} Unit;

typedef struct Units {
    Unit *u;
    size_t n;
    char *names;                /* storage for split "-x=v" names */
} Units;

typedef struct Ctx {
    bool oom;
    CprCmdlineDiff *diff;
    bool machine_resolved;      /* both sides know their machine type */
    bool cpu_resolved;          /* and their CPU model */
} Ctx;

static char *dup_n(Ctx *c, const char *s, size_t n)
{
    char *d = malloc(n + 1);

    if (!d) {
        c->oom = true;
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

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

static bool fill_unit(Ctx *c, Unit *u)
{
    const char *v = u->value;
    Norm nm = { c, u->name, NULL, 0 };
    IdFind f = { NULL, 0 };

    if (!v) {
        u->norm = dup_n(c, "", 0);
        return u->norm != NULL;
    }
    nm.out = malloc(strlen(v) + 1);
    if (!nm.out) {
        c->oom = true;
        return false;
    }
    nm.out[0] = 0;
    for_each_elem(v, drop_elems, &nm);
    u->norm = nm.out;
    if (in(keyed_options, N(keyed_options), u->name)) {
        for_each_elem(v, find_id, &f);
        if (f.id && !(u->id = dup_n(c, f.id, f.len))) {
            return false;
        }
    }
    return true;
}

static void units_free(Units *us)
{
    for (size_t i = 0; i < us->n; i++) {
        free(us->u[i].norm);
        free(us->u[i].id);
    }
    free(us->u);
    free(us->names);
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
    /* Room for every "-x=v" name, NUL-terminated. */
    us->names = malloc(len + 1);
    if (!argv || !us->u || !us->names) {
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
        if (!fill_unit(c, u)) {
            free(argv);
            return false;
        }
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
    char **nl, *line = NULL;
    va_list ap;

    if (c->oom) {
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&line, fmt, ap) < 0) {
        line = NULL;
    }
    va_end(ap);
    nl = line ? realloc(d->lines, (d->nr + 1) * sizeof(*nl)) : NULL;
    if (!nl) {
        free(line);
        c->oom = true;
        return;
    }
    d->lines = nl;
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

static bool same_option(const Unit *a, const Unit *b)
{
    return strcmp(a->name, b->name) == 0;
}

static bool same_key(const Unit *a, const Unit *b)
{
    return same_option(a, b) && a->id && b->id && strcmp(a->id, b->id) == 0;
}

/* Keyed units of option @name: matched by id. */
static void diff_keyed(Ctx *c, Units *a, Units *b, const char *name)
{
    for (size_t i = 0; i < a->n; i++) {
        Unit *u = &a->u[i];
        Unit *m = NULL;

        if (!u->id || strcmp(u->name, name) || u->done) {
            continue;
        }
        u->done = true;
        for (size_t j = 0; j < b->n && !m; j++) {
            if (!b->u[j].done && same_key(u, &b->u[j])) {
                m = &b->u[j];
            }
        }
        if (!m) {
            add_unit(c, '-', u);
            continue;
        }
        m->done = true;
        if (strcmp(u->norm, m->norm) != 0) {
            add_change(c, u, m);
        }
    }
    for (size_t j = 0; j < b->n; j++) {
        Unit *m = &b->u[j];

        if (m->id && !m->done && strcmp(m->name, name) == 0) {
            m->done = true;
            add_unit(c, '+', m);
        }
    }
}

/* Indexes of the units of option @name without an id, in order. */
static size_t collect(Ctx *c, Units *us, const char *name, size_t **out)
{
    size_t n = 0;

    *out = malloc((us->n + 1) * sizeof(**out));
    if (!*out) {
        c->oom = true;
        return 0;
    }
    for (size_t i = 0; i < us->n; i++) {
        if (!us->u[i].id && strcmp(us->u[i].name, name) == 0) {
            (*out)[n++] = i;
        }
    }
    return n;
}

#define MAX_LCS_CELLS (1u << 20)

/*
 * Unkeyed units of option @name: in order (a longest common subsequence),
 * so that a device inserted before another shows as one addition.  What
 * is left on both sides pairs up as changes ("~ -m 512M -> 1G").
 */
static void diff_ordered(Ctx *c, Units *a, Units *b, const char *name)
{
    size_t *ia = NULL, *ib = NULL, *ra = NULL, *rb = NULL;
    size_t na = collect(c, a, name, &ia), nb = collect(c, b, name, &ib);
    size_t nra = 0, nrb = 0, i, j;
    uint32_t *t = NULL;

    ra = malloc((na + 1) * sizeof(*ra));
    rb = malloc((nb + 1) * sizeof(*rb));
    if (c->oom || !ra || !rb) {
        c->oom = true;
        goto out;
    }
    if ((na + 1) * (nb + 1) <= MAX_LCS_CELLS &&
        (t = calloc((na + 1) * (nb + 1), sizeof(*t)))) {
#define T(x, y) t[(x) * (nb + 1) + (y)]
        for (i = na; i-- > 0;) {
            for (j = nb; j-- > 0;) {
                T(i, j) = strcmp(a->u[ia[i]].norm, b->u[ib[j]].norm) == 0 ?
                          T(i + 1, j + 1) + 1 :
                          (T(i + 1, j) > T(i, j + 1) ? T(i + 1, j) :
                           T(i, j + 1));
            }
        }
        for (i = 0, j = 0; i < na || j < nb;) {
            if (i < na && j < nb &&
                strcmp(a->u[ia[i]].norm, b->u[ib[j]].norm) == 0) {
                i++, j++;
            } else if (j == nb || (i < na && T(i + 1, j) >= T(i, j + 1))) {
                ra[nra++] = ia[i++];
            } else {
                rb[nrb++] = ib[j++];
            }
        }
#undef T
    } else {
        /* Too long for the table: position by position. */
        for (i = 0; i < na || i < nb; i++) {
            if (i < na && i < nb &&
                strcmp(a->u[ia[i]].norm, b->u[ib[i]].norm) == 0) {
                continue;
            }
            if (i < na) {
                ra[nra++] = ia[i];
            }
            if (i < nb) {
                rb[nrb++] = ib[i];
            }
        }
    }
    for (i = 0; i < nra || i < nrb; i++) {
        if (i < nra && i < nrb &&
            !strcmp(a->u[ra[i]].norm, b->u[rb[i]].norm)) {
            add_moved(c, &a->u[ra[i]]);
        } else if (i < nra && i < nrb) {
            add_change(c, &a->u[ra[i]], &b->u[rb[i]]);
        } else if (i < nra) {
            add_unit(c, '-', &a->u[ra[i]]);
        } else {
            add_unit(c, '+', &b->u[rb[i]]);
        }
    }
    for (i = 0; i < na; i++) {
        a->u[ia[i]].done = true;
    }
    for (j = 0; j < nb; j++) {
        b->u[ib[j]].done = true;
    }
out:
    free(t);
    free(ia);
    free(ib);
    free(ra);
    free(rb);
}

/* The ids of option @name present on both sides, in @x's order. */
static char *common_ids(Ctx *c, Units *x, Units *y, const char *name)
{
    size_t cap = 1, len = 0;
    char *s;

    for (size_t i = 0; i < x->n; i++) {
        cap += x->u[i].id ? strlen(x->u[i].id) + 2 : 0;
    }
    s = malloc(cap);
    if (!s) {
        c->oom = true;
        return NULL;
    }
    s[0] = 0;
    for (size_t i = 0; i < x->n; i++) {
        const Unit *u = &x->u[i];
        bool both = false;

        if (!u->id || strcmp(u->name, name)) {
            continue;
        }
        for (size_t j = 0; j < y->n && !both; j++) {
            both = same_key(u, &y->u[j]);
        }
        if (both) {
            len += (size_t)sprintf(s + len, "%s%s", len ? ", " : "", u->id);
        }
    }
    return s;
}

static void diff_order(Ctx *c, Units *a, Units *b, const char *name)
{
    char *sa = common_ids(c, a, b, name), *sb = common_ids(c, b, a, name);

    if (sa && sb && strcmp(sa, sb) != 0) {
        add_line(c, "~ order of -%s id=%s -> %s", name, sa, sb);
    }
    free(sa);
    free(sb);
}

static void diff_option(Ctx *c, Units *a, Units *b, const char *name)
{
    diff_keyed(c, a, b, name);
    diff_ordered(c, a, b, name);
    if (in(ordered_options, N(ordered_options), name)) {
        diff_order(c, a, b, name);
    }
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
    Ctx c = { false, diff, false, false };
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
        /* Option by option, in the order they first appear. */
        for (size_t i = 0; i < a.n + b.n && !c.oom; i++) {
            Unit *u = i < a.n ? &a.u[i] : &b.u[i - a.n];

            if (!u->done) {
                diff_option(&c, &a, &b, u->name);
            }
        }
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
