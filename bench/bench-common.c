/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bench.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *bench_shm_base, *bench_disk_base;

const Medium bench_media[N_MEDIA] = {
    [MEDIUM_SHM_FORCE] = { "shm+force", "1", FALSE },
    [MEDIUM_SHM_MSYNC] = { "shm", "0", FALSE },
    [MEDIUM_EXT4] = { "ext4", "0", TRUE },
};

const Transport bench_transports[N_TRANSPORTS] = {
    [T_PMEM] = { "pmem", "pmem", TRUE,
                 "durable+published (flush/msync + commit record)" },
    [T_FILE_PATCHED] = { "file(patched)", "file", TRUE,
                         "NONE: no fsync, page cache only" },
    [T_FILE_STOCK] = { "file(stock)", "file", FALSE,
                       "NONE: no fsync, page cache only" },
};

const char *bench_qemu_for(const BenchOpts *o, TransportId t)
{
    return bench_transports[t].patched_qemu ? o->qemu : o->stock_qemu;
}

const char *bench_medium_dir(MediumId m)
{
    return bench_media[m].on_disk ? bench_disk_base : bench_shm_base;
}

void bench_set_medium_env(MediumId m)
{
    g_setenv("PMEM_IS_PMEM_FORCE", bench_media[m].pmem_force, TRUE);
}

char *bench_uri(TransportId t, const char *path)
{
    return g_strdup_printf("%s:%s", bench_transports[t].scheme, path);
}

FILE *bench_csv_open(const BenchOpts *o, const char *name, const char *header)
{
    g_autofree char *path = g_build_filename(o->out_dir, name, NULL);
    FILE *f = fopen(path, "w");

    if (f) {
        fprintf(f, "%s\n", header);
    }
    return f;
}

GHashTable *bench_micro(const BenchOpts *o, const char *const *args,
                        GError **errp)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    GHashTable *kv;
    int status;

    g_ptr_array_add(argv, (char *)o->micro_exe);
    for (const char *const *a = args; *a; a++) {
        g_ptr_array_add(argv, (char *)*a);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_CHILD_INHERITS_STDIN,
                      NULL, NULL, &out, NULL, &status, errp) ||
        !g_spawn_check_wait_status(status, errp)) {
        g_prefix_error(errp, "%s: ", o->micro_exe);
        return NULL;
    }
    kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    lines = g_strsplit(out, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *sp = strchr(*l, ' ');

        if (sp) {
            double *v = g_new(double, 1);

            *v = strtod(sp + 1, NULL);
            g_hash_table_insert(kv, g_strndup(*l, sp - *l), v);
        }
    }
    return kv;
}

double bench_micro_get(GHashTable *kv, const char *key)
{
    double *v = kv ? g_hash_table_lookup(kv, key) : NULL;

    return v ? *v : NAN;
}

double bench_fdatasync_us(const char *path)
{
    int fd = open(path, O_RDONLY);
    gint64 t0;
    int r;

    if (fd < 0) {
        return NAN;
    }
    t0 = g_get_monotonic_time();
    r = fdatasync(fd);
    t0 = g_get_monotonic_time() - t0;
    close(fd);
    return r == 0 ? (double)t0 : NAN;
}

/* line_time -- µs since the epoch of a "-msg timestamp=on" line, or NAN */
static double line_time(const char *line)
{
    g_autoptr(GDateTime) dt = NULL;
    g_autofree char *iso = NULL;
    const char *sp = strchr(line, ' ');

    if (!sp || sp - line < 20 || line[4] != '-') {
        return NAN;
    }
    iso = g_strndup(line, sp - line);
    dt = g_date_time_new_from_iso8601(iso, NULL);
    return dt ? g_date_time_to_unix(dt) * 1e6 + g_date_time_get_microsecond(dt)
              : NAN;
}

double bench_log_time(const char *log, const char *what, double from)
{
    g_auto(GStrv) lines = g_strsplit(log ? log : "", "\n", -1);

    for (guint i = 0; lines[i]; i++) {
        if (strstr(lines[i], what)) {
            double t = line_time(lines[i]);

            if (!isnan(t) && t >= from) {
                return t;
            }
        }
    }
    return NAN;
}

void bench_target_set(Report *r, const char *key, double v)
{
    g_hash_table_insert(r->targets, g_strdup(key), g_memdup2(&v, sizeof(v)));
}

double bench_target_get(const Report *r, const char *key)
{
    const double *v = g_hash_table_lookup(r->targets, key);

    return v ? *v : NAN;
}
