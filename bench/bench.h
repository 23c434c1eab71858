/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What every part of cpr-latency shares: options, media, transports, output. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

typedef struct {
    guint cycles;
    guint warmup;
    const char *ram_size;      /* qtest guest RAM for the latency runs */
    const char *shm_dir;       /* tmpfs base */
    const char *disk_dir;      /* ext4 base */
    const char *out_dir;
    gboolean guest_qtest, guest_linux;
    gboolean run_latency, run_micro, run_scale, run_full_ram;
    gboolean run_restore_outside, run_pre_stop, run_first_save;
    guint fresh_cycles;        /* first-save-cold-restore: cycles per cell */
    GArray *scale_n;           /* guint */
    GArray *full_ram_gib;      /* guint */
    GArray *mapped_channels;   /* guint, multifd channels (0: none) */
    guint full_ram_rounds;     /* mapped-ram rows: interleaved rounds */
    gboolean full_ram_stream;  /* the stream rows (no mapped-ram) */
    gboolean full_ram_mapped;  /* the mapped-ram rows */
    const char *qemu;          /* patched; "" = pmem rows skipped */
    const char *stock_qemu;
    const char *plugin;        /* transport-pmem.so */
    const char *micro_exe;     /* cpr-abi-micro */
    /* another transport-pmem.so's directory: before/after rows, or NULL */
    const char *baseline_transport_dir;
    guint cores;
} BenchOpts;

typedef enum { MEDIUM_SHM_FORCE, MEDIUM_SHM_MSYNC, MEDIUM_EXT4, N_MEDIA } MediumId;
typedef enum { T_PMEM, T_FILE_PATCHED, T_FILE_STOCK, N_TRANSPORTS } TransportId;

typedef struct {
    const char *name;          /* "shm+force" */
    const char *pmem_force;    /* PMEM_IS_PMEM_FORCE for the processes */
    gboolean on_disk;
} Medium;

typedef struct {
    const char *name;          /* "pmem", "file(patched)", "file(stock)" */
    const char *scheme;
    gboolean patched_qemu;
    const char *durability;    /* what "completed" guarantees */
} Transport;

extern const Medium bench_media[N_MEDIA];
extern const Transport bench_transports[N_TRANSPORTS];

/* Output sinks: markdown for the README, JSON summary, per-section CSV. */
typedef struct {
    GString *md;
    JsonBuilder *json;         /* an open object */
    const BenchOpts *opts;
    /* medians the issue-18 targets table reads (targets.c), by key */
    GHashTable *targets;       /* char * -> double * */
} Report;

const char *bench_qemu_for(const BenchOpts *o, TransportId t);
/* Directory for @m under the bench's private bases. */
const char *bench_medium_dir(MediumId m);
void bench_set_medium_env(MediumId m);
/* "scheme:path" */
char *bench_uri(TransportId t, const char *path);
FILE *bench_csv_open(const BenchOpts *o, const char *name, const char *header);

/* Run cpr-abi-micro with @args; "key value" lines into a table (double). */
GHashTable *bench_micro(const BenchOpts *o, const char *const *args,
                        GError **errp);
double bench_micro_get(GHashTable *kv, const char *key);

/* Time (µs since the epoch) of the first "-msg timestamp=on" line of @log
 * at or after @from that contains @what, or NAN. */
double bench_log_time(const char *log, const char *what, double from);

/* A median for the targets table; NAN where it was not measured. */
void bench_target_set(Report *r, const char *key, double v);
double bench_target_get(const Report *r, const char *key);

/* Time an fdatasync() of @path (the durable-save equivalent for file:). */
double bench_fdatasync_us(const char *path);

/* The parts; each appends to @r. */
gboolean bench_latency(Report *r, GError **errp);
gboolean bench_micro_abi(Report *r, GError **errp);
gboolean bench_scale(Report *r, GError **errp);
gboolean bench_full_ram(Report *r, GError **errp);
gboolean bench_restore_outside(Report *r, GError **errp);
gboolean bench_pre_stop(Report *r, GError **errp);
gboolean bench_first_save_cold_restore(Report *r, GError **errp);
/* The issue-18 targets table from what the parts measured. */
void bench_targets(Report *r, gsize at);
gboolean bench_full_ram_mapped(Report *r, double memcpy_gbs, GError **errp);

/* Private per-run base directories, created by main. */
extern char *bench_shm_base, *bench_disk_base;

#endif
