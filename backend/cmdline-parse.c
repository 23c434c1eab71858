/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An argument list split into units, each with what is compared of it
 * (its norm: the value without what may differ) and its id=.
 */
#include "cmdline-internal.h"
#include "hash.h"

#include <stdlib.h>

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
               cpr_cmdline_elem_is(elem, len, "type=");
    } else if (strcmp(nm->name, "cpu") == 0 && nm->c->cpu_resolved) {
        drop = index == 0;      /* the model, likewise */
    } else if (strcmp(nm->name, "object") == 0) {
        drop = cpr_cmdline_elem_is(elem, len, "mem-path=") ||
               cpr_cmdline_elem_is(elem, len, "prealloc=") ||
               cpr_cmdline_elem_is(elem, len, "prealloc-threads=") ||
               cpr_cmdline_elem_is(elem, len, "prealloc-context=");
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
    if (!f->id && cpr_cmdline_elem_is(elem, len, "id=")) {
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

    if (!v || cpr_cmdline_is_port(u->name)) {
        /* A port's host side may change: the guest sees a port at this
         * position, or none ("-serial none" keeps its index). */
        u->norm = !v ? "" : strcmp(v, "none") ? "(a port)" : "none";
        u->norm_hash = XXH3_64bits(u->norm, strlen(u->norm));
        return;
    }
    /* Never longer than @v: elements are only dropped. */
    nm.out[0] = 0;
    cpr_cmdline_each_elem(v, drop_elems, &nm);
    u->norm = nm.out;
    u->norm_hash = XXH3_64bits(nm.out, nm.len);
    us->stored += nm.len + 1;
    if (cpr_cmdline_is_keyed(u->name)) {
        cpr_cmdline_each_elem(v, find_id, &f);
        if (f.id) {
            char *id = us->store + us->stored;

            memcpy(id, f.id, f.len);
            id[f.len] = 0;
            u->id = id;
            us->stored += f.len + 1;
        }
    }
}

void cpr_cmdline_units_free(Units *us)
{
    free(us->u);
    free(us->names);
    free(us->store);
}

/*
 * cpr_cmdline_units -- as cmdline-internal.h says.  "--x" is "-x"; "-x=v"
 * is "-x v"; "-M" is "-machine".
 */
bool cpr_cmdline_units(Ctx *c, const char *args, size_t len, Units *us)
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
