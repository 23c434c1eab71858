/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-latency: how long a cpr-reboot freezes a guest, per transport and
 * medium, in one run.  Writes OUT/{report.md,summary.json,*.csv,*.png}.
 */
#include "bench.h"
#include "test-env.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <unistd.h>

static GArray *parse_list_min(const char *s, guint64 min, GError **errp)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    GArray *a = g_array_new(FALSE, FALSE, sizeof(guint));

    for (char **p = parts; *p; p++) {
        guint64 v;

        if (!g_ascii_string_to_unsigned(*p, 10, min, 64, &v, errp)) {
            g_array_free(a, TRUE);
            return NULL;
        }
        guint u = v;
        g_array_append_val(a, u);
    }
    return a;
}

static GArray *parse_list(const char *s, GError **errp)
{
    return parse_list_min(s, 1, errp);
}

static char *first_line(const char *const *argv)
{
    g_autofree char *out = NULL;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL | G_SPAWN_SEARCH_PATH,
                      NULL, NULL, &out, NULL, NULL, NULL) || !out) {
        return g_strdup("?");
    }
    return g_strndup(out, strcspn(out, "\n"));
}

static void header(Report *r)
{
    const BenchOpts *o = r->opts;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *date = g_date_time_format(now, "%Y-%m-%d %H:%M UTC");
    const char *pv[] = { o->qemu, "--version", NULL };
    const char *sv[] = { o->stock_qemu, "--version", NULL };
    const char *cpu[] = { "sh", "-c",
        "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2", NULL };
    g_autofree char *patched = *o->qemu ? first_line(pv) : g_strdup("(none)");
    g_autofree char *stock = first_line(sv);
    g_autofree char *model = first_line(cpu);
    struct utsname u;

    uname(&u);
    g_string_append_printf(r->md,
        "Measured %s on %s (%u cores shared with other builds), %.1f GiB RAM, "
        "Linux %s.  Patched QEMU: %s.  Stock QEMU: %s.  Media: /dev/shm "
        "(tmpfs) with PMEM_IS_PMEM_FORCE=1 (libpmem cache-flush path) and =0 "
        "(msync path), ext4 (%s, msync path).\n",
        date, g_strstrip(model), o->cores,
        sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1 << 30),
        u.release, patched, stock, o->disk_dir);
    json_builder_set_member_name(r->json, "date");
    json_builder_add_string_value(r->json, date);
    json_builder_set_member_name(r->json, "patched_qemu");
    json_builder_add_string_value(r->json, patched);
    json_builder_set_member_name(r->json, "stock_qemu");
    json_builder_add_string_value(r->json, stock);
}

static void write_outputs(Report *r)
{
    const BenchOpts *o = r->opts;
    g_autofree char *md = g_build_filename(o->out_dir, "report.md", NULL);
    g_autofree char *js = g_build_filename(o->out_dir, "summary.json", NULL);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    const char *plot[] = { "gnuplot", "-e", NULL, BENCH_PLOT_SCRIPT, NULL };
    g_autofree char *dir_arg = g_strdup_printf("dir='%s'", o->out_dir);

    json_builder_end_object(r->json);
    root = json_builder_get_root(r->json);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json_generator_to_file(gen, js, NULL);
    g_file_set_contents(md, r->md->str, -1, NULL);
    plot[2] = dir_arg;
    if (o->run_latency) {
        g_spawn_sync(NULL, (char **)plot, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                     NULL, NULL, NULL, NULL);
    }
    printf("%s\nwrote %s, %s, *.csv%s\n", r->md->str, md, js,
           o->run_latency ? ", latency.png" : "");
}

int main(int argc, char **argv)
{
    BenchOpts o = { .cycles = 20, .warmup = 1, .ram_size = "256M",
                    .shm_dir = "/dev/shm", .disk_dir = "/var/tmp",
                    .out_dir = BENCH_DEFAULT_OUT, .qemu = BENCH_QEMU,
                    .stock_qemu = BENCH_STOCK_QEMU,
                    .plugin = BENCH_TRANSPORT_DIR "/transport-pmem.so",
                    .micro_exe = BENCH_MICRO_EXE };
    gboolean quick = FALSE, smoke = FALSE;
    gint cycles = 0;
    g_autofree char *guest = NULL, *only = NULL, *scale = NULL, *full = NULL;
    g_autofree char *qemu = NULL, *stock = NULL;
    /* the option strings GOption allocates, freed here; o points at them */
    g_autofree char *ram = NULL, *shm = NULL, *disk = NULL, *baseline = NULL;
    g_autofree char *out = NULL;
    g_autofree char *channels = NULL, *fr_kind = NULL;
    gint rounds = 0, fresh_cycles = 0;
    GOptionEntry entries[] = {
        { "cycles", 'c', 0, G_OPTION_ARG_INT, &cycles,
          "measured cycles per transport and medium (default 12, --quick 5)", "N" },
        { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick,
          "about a minute: 5 cycles, qtest guest, N up to 8, 1 GiB only", NULL },
        { "smoke", 0, 0, G_OPTION_ARG_NONE, &smoke,
          "seconds: 2 cycles, qtest guest, N=1,2, 1 GiB full-RAM skipped", NULL },
        { "fresh-cycles", 0, 0, G_OPTION_ARG_INT, &fresh_cycles,
          "cycles of the first-save-cold-restore part (default 7, --quick "
          "and --smoke 2)", "N" },
        { "ram", 'm', 0, G_OPTION_ARG_STRING, &ram,
          "qtest guest RAM for the latency runs (default 256M)", "SIZE" },
        { "shm-dir", 0, 0, G_OPTION_ARG_FILENAME, &shm,
          "tmpfs directory for RAM files and shm images (default /dev/shm)", "DIR" },
        { "image-dir", 'i', 0, G_OPTION_ARG_FILENAME, &disk,
          "ext4 directory for the on-disk images (default /var/tmp)", "DIR" },
        { "guest", 'g', 0, G_OPTION_ARG_STRING, &guest,
          "qtest, linux or both (default both; --quick: qtest)", "KIND" },
        { "only", 0, 0, G_OPTION_ARG_STRING, &only,
          "comma list of parts: latency,micro,scale,first-save,full-ram,"
          "restore-outside,pre-stop (default all but the last two)", "LIST" },
        { "scale", 0, 0, G_OPTION_ARG_STRING, &scale,
          "VM counts for the blackout test (default 1,2,4,8,16,32)", "LIST" },
        { "full-ram", 0, 0, G_OPTION_ARG_STRING, &full,
          "GiB sizes for the full-RAM save (default 1,4)", "LIST" },
        { "full-ram-kind", 0, 0, G_OPTION_ARG_STRING, &fr_kind,
          "full-RAM rows: stream, mapped (mapped-ram) or both (default mapped)", "KIND" },
        { "mapped-channels", 0, 0, G_OPTION_ARG_STRING, &channels,
          "multifd channels of the mapped-ram rows, 0 = no multifd (default 0,2)", "LIST" },
        { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds,
          "interleaved rounds of the mapped-ram rows (default 1: the default "
          "run fits in ~8 min; 3 for medians)", "N" },
        { "qemu", 0, 0, G_OPTION_ARG_FILENAME, &qemu,
          "patched QEMU (default from meson -Dqemu)", "PATH" },
        { "stock-qemu", 0, 0, G_OPTION_ARG_FILENAME, &stock,
          "stock QEMU 10.0 (default from meson)", "PATH" },
        { "baseline-transport", 0, 0, G_OPTION_ARG_FILENAME,
          &baseline,
          "directory of another transport-pmem.so: before/after rows in "
          "restore-outside and pre-stop", "DIR" },
        { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
          "output directory (default " BENCH_DEFAULT_OUT ")", "DIR" },
        { 0 },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- cpr-reboot pause/restore benchmark: pmem: vs file:");
    g_autoptr(GError) err = NULL;
    Report r = { g_string_new(""), json_builder_new(), &o,
                 g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       g_free) };
    gsize targets_at;
    gboolean ok = TRUE;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "cpr-latency: %s\n", err->message);
        return 2;
    }
    if (qemu) {
        o.qemu = qemu;
    }
    o.ram_size = ram ? ram : o.ram_size;
    o.shm_dir = shm ? shm : o.shm_dir;
    o.disk_dir = disk ? disk : o.disk_dir;
    o.out_dir = out ? out : o.out_dir;
    o.baseline_transport_dir = baseline;
    if (stock) {
        o.stock_qemu = stock;
    }
    o.cycles = cycles > 0 ? (guint)cycles : smoke ? 2 : quick ? 5 : 12;
    if (!guest) {
        guest = g_strdup(quick || smoke ? "qtest" : "both");
    }
    o.guest_qtest = !g_str_equal(guest, "linux");
    o.guest_linux = !g_str_equal(guest, "qtest");
    if (!only) {
        only = g_strdup(smoke ? "latency,micro,scale,first-save"
                        : "latency,micro,scale,first-save,full-ram");
    }
    o.run_latency = strstr(only, "latency") != NULL;
    o.run_micro = strstr(only, "micro") != NULL;
    o.run_scale = strstr(only, "scale") != NULL;
    o.run_full_ram = strstr(only, "full-ram") != NULL;
    o.run_restore_outside = strstr(only, "restore-outside") != NULL;
    o.run_pre_stop = strstr(only, "pre-stop") != NULL;
    o.run_first_save = strstr(only, "first-save") != NULL;
    o.fresh_cycles = fresh_cycles > 0 ? (guint)fresh_cycles
                     : smoke || quick ? 2 : 7;
    o.scale_n = parse_list(scale ? scale : smoke ? "1,2" : quick ? "1,2,4,8"
                           : "1,2,4,8,16,32", &err);
    o.full_ram_gib = o.scale_n ? parse_list(full ? full : quick ? "1" : "1,4",
                                            &err) : NULL;
    o.mapped_channels = o.full_ram_gib ?
        parse_list_min(channels ? channels : "0,2", 0, &err) : NULL;
    o.full_ram_rounds = rounds > 0 ? (guint)rounds : 1;
    o.full_ram_stream = fr_kind && !g_str_equal(fr_kind, "mapped");
    o.full_ram_mapped = !fr_kind || !g_str_equal(fr_kind, "stream");
    if (!o.mapped_channels) {
        fprintf(stderr, "cpr-latency: %s\n", err->message);
        return 2;
    }
    o.cores = sysconf(_SC_NPROCESSORS_ONLN);
    /* the patched QEMU finds transport-pmem.so here */
    g_setenv("QEMU_TRANSPORT_PLUGIN_DIR", BENCH_TRANSPORT_DIR, FALSE);
    g_mkdir_with_parents(o.out_dir, 0755);
    bench_shm_base = g_build_filename(o.shm_dir, "cpr-latency-XXXXXX", NULL);
    bench_disk_base = g_build_filename(o.disk_dir, "cpr-latency-XXXXXX", NULL);
    if (!g_mkdtemp(bench_shm_base) || !g_mkdtemp(bench_disk_base)) {
        fprintf(stderr, "cpr-latency: cannot create work directories\n");
        return 1;
    }

    json_builder_begin_object(r.json);
    header(&r);
    targets_at = r.md->len;
    ok = (!o.run_latency || bench_latency(&r, &err)) &&
         (!o.run_micro || !*o.qemu || bench_micro_abi(&r, &err)) &&
         (!o.run_scale || bench_scale(&r, &err)) &&
         (!o.run_first_save || bench_first_save_cold_restore(&r, &err)) &&
         (!o.run_full_ram || bench_full_ram(&r, &err)) &&
         (!o.run_restore_outside || bench_restore_outside(&r, &err)) &&
         (!o.run_pre_stop || bench_pre_stop(&r, &err));
    /* what was measured before a part failed still shows */
    bench_targets(&r, targets_at);
    if (!ok) {
        fprintf(stderr, "cpr-latency: %s\n", err->message);
        json_builder_set_member_name(r.json, "error");
        json_builder_add_string_value(r.json, err->message);
    }
    write_outputs(&r);
    test_env_rmtree(bench_shm_base);
    test_env_rmtree(bench_disk_base);
    g_string_free(r.md, TRUE);
    g_object_unref(r.json);
    g_hash_table_destroy(r.targets);
    return ok ? 0 : 1;
}
