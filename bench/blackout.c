/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-blackout: the guest-visible blackout of a host kernel update, phase
 * by phase, for N VMs, in the reboot suite's L1 host (tests/reboot/: an
 * L1 VM under TCG with an emulated NVDIMM and fs-dax at /mnt/pmem, the
 * patched QEMU and a stock one inside).  Each cycle, in L1:
 *
 *   reboot-l2 save    N qtest L2 VMs started normally (RAM on /mnt/pmem),
 *                     saved together by cpr-host-update (pmem:, or
 *                     --scheme=file with stock QEMU), whose reboot command
 *                     is "reboot-l2 quit-all && kexec -e": every QEMU gets
 *                     SIGTERM, as from a host's shutdown, then kexec;
 *   (L1 boots)        init, NVDIMM modules, mount -o dax;
 *   reboot-l2 restore cpr-host-update restore (--times): every QEMU started
 *                     again and restored; RAM patterns checked.
 *
 * Phases: save = first STOP -> last durable save (pmem: `completed`;
 * file: `completed` + fdatasync of every image and its directory); QEMU
 * quit = SIGTERM -> the last QEMU gone; kexec -> userspace and userspace
 * -> /mnt/pmem mounted from the lines L1 sends (this side's clock);
 * QEMU start = first spawn -> last QMP connected; restore = first
 * migrate-incoming -> last RESUME; resume = last RESUME -> last
 * query-status "running".  The gap between the mount and the restore
 * command (this bench's agent, a systemd unit in production) is left
 * out.  Nested TCG inflates every absolute number; the breakdown and the
 * ratios are what count.
 */
#include "l1-host.h"
#include "stats.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_SAVE, P_QUIT, P_KEXEC, P_MOUNT, P_START, P_RESTORE, P_RESUME,
       N_PHASES };
static const char *const phase_names[N_PHASES] = {
    "save (first STOP → last durable)", "QEMU quit", "kexec → userspace",
    "userspace → /mnt/pmem mounted", "QEMU start", "restore", "resume",
};
static const char *const phase_keys[N_PHASES] = {
    "save_us", "quit_us", "kexec_us", "mount_us", "qemu_start_us",
    "restore_us", "resume_us",
};

typedef struct {
    guint n;
    gboolean file;
    GArray *phases[N_PHASES];   /* double µs per cycle */
    GArray *total;
    GArray *vm_side;            /* total less kexec and mount */
    GArray *pre_stop, *pause, *commit, *vm_start, *vm_restore;   /* per VM */
    GArray *vm_stop, *device_save;
} Row;

static gboolean opt_verbose;
static FILE *csv;

static void log_line(const char *line)
{
    if (opt_verbose) {
        fprintf(stderr, "%s\n", line);
    }
}

static char *build_path(const char *rel)
{
    return g_build_filename(BENCH_BUILD_ROOT, rel, NULL);
}

static double num(JsonObject *o, const char *k)
{
    JsonNode *n = json_object_get_member(o, k);

    return n && JSON_NODE_HOLDS_VALUE(n) ? json_node_get_double(n) : NAN;
}

static void add(GArray *a, double v)
{
    g_array_append_val(a, v);
}

/* "@@quit-done MS" and friends: the number after the prefix. */
static double after(const char *line, const char *prefix)
{
    return g_ascii_strtod(line + strlen(prefix), NULL);
}

static char *driver(const char *qemu, const char *sub, guint n, int round,
                    const char *extra)
{
    g_autofree char *drv = build_path("tests/reboot/reboot-l2");
    g_autofree char *tool = build_path("tools/host-update/cpr-host-update");
    g_autofree char *plugins = build_path("backend");

    return g_strdup_printf("env -u PMEM_IS_PMEM_FORCE QEMU_TRANSPORT_PLUGIN_DIR=%s "
                           "%s --qemu=%s --tool=%s --round=%d --vms=%u %s%s",
                           plugins, drv, qemu, tool, round, n, sub,
                           extra ? extra : "");
}

/* One cycle; FALSE if L1 was lost on the way (nothing recorded then). */
static gboolean cycle(L1Host *l1, Row *row, int round)
{
    g_autofree char *drv = build_path("tests/reboot/reboot-l2");
    const char *qemu = row->file ? BENCH_STOCK_QEMU : BENCH_QEMU;
    g_autofree char *reboot = g_strdup_printf(
        " --reboot-cmd='%s --vms=%u quit-all && kexec -e'%s", drv, row->n,
        row->file ? " --scheme=file" : "");
    g_autofree char *save = driver(qemu, "save", row->n, round, reboot);
    g_autofree char *restore = driver(qemu, "restore", row->n, round,
                                      " --times=/mnt/pmem/l2/times.json");
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(GString) js = g_string_new(NULL);
    g_autoptr(JsonParser) parser = json_parser_new();
    GError *err = NULL;
    double ph[N_PHASES], up, mounted, quit = NAN, total = 0;
    double first_stop = INFINITY, last_done = 0, sync = 0;
    double first_spawn = INFINITY, last_qmp = 0, first_inc = INFINITY;
    double last_resume = 0, last_running = 0;
    gint64 t_down = 0;
    JsonArray *vms;
    char *line;

    fprintf(stderr, "  blackout: round %d, N=%u, %s\n", round, row->n,
            row->file ? "file(stock)" : "pmem");
    l1_run_ok(l1, "rm -rf /mnt/pmem/l2 /run/l2 && kexec -l /boot/vmlinuz "
              "--initrd=/boot/initrd.img --reuse-cmdline", NULL);
    if (l1_lost(l1)) {
        return FALSE;
    }
    l1_send(l1, save);
    for (;;) {
        line = l1_line(l1, L1_CMD_TIMEOUT_S, &t_down);
        if (!line) {
            return FALSE;
        }
        if (g_str_has_prefix(line, "@@quit-done ")) {
            quit = after(line, "@@quit-done ") * 1e3;
            g_free(line);
            break;
        }
        if (g_str_has_prefix(line, "@@rc ")) {
            g_error("the save ended before the reboot: %s", line);
        }
        g_free(line);
    }
    if (!l1_wait_boot(l1, t_down, &up, &mounted, NULL)) {
        return FALSE;
    }
    l1_run_ok(l1, restore, out);
    if (l1_lost(l1)) {
        return FALSE;
    }
    for (guint i = 0; i < row->n; i++) {
        g_autofree char *want = g_strdup_printf(
            "@@verified vm%u round=%d ram=ok cmos=ok", i, round);

        if (!strstr(out->str, want)) {
            g_error("vm%u not restored intact:\n%s", i, out->str);
        }
    }
    /* Only the JSON line: anything L1 printed meanwhile stays out.  Once
     * in a while a line came cut (a background shell's message across
     * it): read it again. */
    for (int tries = 0;; tries++) {
        const char *j;
        g_autofree char *text = NULL;

        g_string_truncate(js, 0);
        g_clear_error(&err);
        l1_run_ok(l1, "cat /mnt/pmem/l2/times.json; echo", js);
        if (l1_lost(l1)) {
            return FALSE;
        }
        j = strstr(js->str, "{\"rebooted\"");
        text = g_strndup(j ? j : "", j ? strcspn(j, "\n") : 0);
        if (j && json_parser_load_from_data(parser, text, -1, &err) &&
            json_parser_get_root(parser)) {
            break;
        }
        if (tries == 2) {
            g_error("times.json: %s:\n%s", err ? err->message : "no JSON",
                    js->str);
        }
    }
    vms = json_object_get_array_member(
        json_node_get_object(json_parser_get_root(parser)), "vms");
    g_assert_cmpuint(json_array_get_length(vms), ==, row->n);
    for (guint i = 0; i < row->n; i++) {
        JsonObject *v = json_array_get_object_element(vms, i);
        double s = num(v, "sync-us");

        first_stop = MIN(first_stop, num(v, "stop-at-us"));
        last_done = MAX(last_done, num(v, "completed-at-us"));
        sync += isnan(s) ? 0 : s;
        first_spawn = MIN(first_spawn, num(v, "spawn-at-us"));
        last_qmp = MAX(last_qmp, num(v, "qmp-at-us"));
        first_inc = MIN(first_inc, num(v, "incoming-at-us"));
        last_resume = MAX(last_resume, num(v, "resume-at-us"));
        last_running = MAX(last_running, num(v, "running-at-us"));
        add(row->pre_stop, num(v, "pre-stop-us"));
        add(row->pause, num(v, "pause-us"));
        add(row->commit, row->file ? s : num(v, "commit-us"));
        add(row->vm_stop, num(v, "vm-stop-us"));
        add(row->device_save, num(v, "device-save-us"));
        add(row->vm_start, num(v, "qmp-at-us") - num(v, "spawn-at-us"));
        add(row->vm_restore, num(v, "resume-at-us") - num(v, "incoming-at-us"));
        if (csv) {
            fprintf(csv, "vm,%s,%u,%d,vm%u,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n",
                    row->file ? "file(stock)" : "pmem", row->n, round, i,
                    num(v, "pre-stop-us"), num(v, "pause-us"),
                    num(v, "commit-us"), s,
                    num(v, "qmp-at-us") - num(v, "spawn-at-us"),
                    num(v, "resume-at-us") - num(v, "incoming-at-us"),
                    num(v, "running-at-us") - num(v, "resume-at-us"));
        }
    }
    ph[P_SAVE] = last_done - first_stop + sync;
    ph[P_QUIT] = quit;
    ph[P_KEXEC] = up * 1e6;
    ph[P_MOUNT] = mounted * 1e6;
    ph[P_START] = last_qmp - first_spawn;
    ph[P_RESTORE] = last_resume - first_inc;
    ph[P_RESUME] = last_running - last_resume;
    for (int p = 0; p < N_PHASES; p++) {
        add(row->phases[p], ph[p]);
        total += ph[p];
    }
    add(row->total, total);
    add(row->vm_side, total - ph[P_KEXEC] - ph[P_MOUNT]);
    if (csv) {
        fprintf(csv, "host,%s,%u,%d,", row->file ? "file(stock)" : "pmem",
                row->n, round);
        for (int p = 0; p < N_PHASES; p++) {
            fprintf(csv, "%.0f,", ph[p]);
        }
        fprintf(csv, "%.0f,%.0f\n", total, total - ph[P_KEXEC] - ph[P_MOUNT]);
        fflush(csv);
    }
    return TRUE;
}

static int l1_losses;

/* L1's QEMU died (nested TCG under MTTCG is not flawless): boot it again. */
static void l1_again(L1Host *l1)
{
    double up, mounted;

    l1_losses++;
    fprintf(stderr, "cpr-blackout: L1 lost, booting it again\n");
    l1_kill(l1);
    if (!l1_wait_boot(l1, l1_start(l1), &up, &mounted, NULL)) {
        g_error("L1 does not boot again");
    }
}

static char *ms(GArray *a)
{
    Summary s = summarize((double *)a->data, a->len);

    return isnan(s.median) ? g_strdup("-")
           : a->len > 1 ? g_strdup_printf("%.1f [%.1f–%.1f]", s.median / 1e3,
                                          s.min / 1e3, s.max / 1e3)
           : g_strdup_printf("%.1f", s.median / 1e3);
}

static double med(GArray *a)
{
    return summarize((double *)a->data, a->len).median;
}

static GArray *parse_list(const char *s)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", -1);
    GArray *a = g_array_new(FALSE, FALSE, sizeof(guint));

    for (char **p = parts; *p; p++) {
        guint v = atoi(*p);

        if (v < 1 || v > 16) {
            fprintf(stderr, "cpr-blackout: N must be 1-16\n");
            exit(2);
        }
        g_array_append_val(a, v);
    }
    return a;
}

int main(int argc, char **argv)
{
    g_autofree char *vms_opt = NULL, *out_dir = NULL;
    gint rounds = 3;
    gboolean no_file = FALSE, keep = FALSE;
    GOptionEntry entries[] = {
        { "vms", 'n', 0, G_OPTION_ARG_STRING, &vms_opt,
          "VM counts (default 1,2,4)", "LIST" },
        { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds,
          "cycles per N and transport (default 3)", "R" },
        { "no-file", 0, 0, G_OPTION_ARG_NONE, &no_file,
          "pmem: only (no stock file: rows)", NULL },
        { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out_dir,
          "output directory (default " BENCH_DEFAULT_OUT ")", "DIR" },
        { "keep", 0, 0, G_OPTION_ARG_NONE, &keep,
          "keep L1's work directory (console, logs)", NULL },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
          "every line L1 sends, on stderr", NULL },
        { 0 },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- host-update blackout, phase by phase, in an L1 host with fs-dax");
    g_autoptr(GError) err = NULL;
    g_autofree char *kernel = NULL, *initrd = NULL, *disk = NULL;
    g_autofree char *dir = NULL, *md_path = NULL, *csv_path = NULL;
    g_autoptr(GArray) ns = NULL;
    g_autoptr(GString) md = g_string_new(NULL);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *date = g_date_time_format(now, "%Y-%m-%d %H:%M UTC");
    GPtrArray *rows = g_ptr_array_new();
    L1Host *l1;
    double img_s, up, mounted;
    gint64 t;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || rounds < 1) {
        fprintf(stderr, "cpr-blackout: %s\n", err ? err->message : "--rounds");
        return 2;
    }
    ns = parse_list(vms_opt ? vms_opt : "1,2,4");
    if (!out_dir) {
        out_dir = g_strdup(BENCH_DEFAULT_OUT);
    }
    g_mkdir_with_parents(out_dir, 0755);
    md_path = g_build_filename(out_dir, "blackout.md", NULL);
    csv_path = g_build_filename(out_dir, "blackout.csv", NULL);
    csv = fopen(csv_path, "w");
    if (csv) {
        fprintf(csv, "# host rows: kind,transport,n,round,");
        for (int p = 0; p < N_PHASES; p++) {
            fprintf(csv, "%s,", phase_keys[p]);
        }
        fprintf(csv, "total_us,vm_side_us\n# vm rows: kind,transport,n,round,vm,"
                "pre_stop_us,pause_us,commit_us,sync_us,qemu_start_us,"
                "restore_us,resume_us\n");
    }

    fprintf(stderr, "cpr-blackout: L1 image (a cold build takes a minute or two)\n");
    l1_image(BENCH_L1_SCRIPT, BENCH_QEMU, BENCH_BUILD_ROOT,
             no_file ? NULL : BENCH_STOCK_QEMU, &kernel, &initrd, &disk,
             &img_s);
    dir = g_build_filename(g_get_tmp_dir(), "cpr-blackout-XXXXXX", NULL);
    if (!g_mkdtemp(dir)) {
        perror("cpr-blackout: mkdtemp");
        return 1;
    }
    l1 = l1_new(dir, BENCH_L1_QEMU, kernel, initrd, disk, "2G", log_line);
    t = l1_start(l1);
    l1_wait_boot(l1, t, &up, &mounted, NULL);
    fprintf(stderr, "cpr-blackout: L1 up (%.1f s to userspace, %.1f s more "
            "to /mnt/pmem), image %s\n", up, mounted, disk);

    for (guint k = 0; k < ns->len; k++) {
        for (int f = 0; f < (no_file ? 1 : 2); f++) {
            Row *row = g_new0(Row, 1);

            row->n = g_array_index(ns, guint, k);
            row->file = f;
            for (int p = 0; p < N_PHASES; p++) {
                row->phases[p] = g_array_new(FALSE, FALSE, sizeof(double));
            }
            row->total = g_array_new(FALSE, FALSE, sizeof(double));
            row->vm_side = g_array_new(FALSE, FALSE, sizeof(double));
            row->commit = g_array_new(FALSE, FALSE, sizeof(double));
            row->vm_stop = g_array_new(FALSE, FALSE, sizeof(double));
            row->device_save = g_array_new(FALSE, FALSE, sizeof(double));
            row->pre_stop = g_array_new(FALSE, FALSE, sizeof(double));
            row->pause = g_array_new(FALSE, FALSE, sizeof(double));
            row->vm_start = g_array_new(FALSE, FALSE, sizeof(double));
            row->vm_restore = g_array_new(FALSE, FALSE, sizeof(double));
            g_ptr_array_add(rows, row);
        }
    }
    /* Round-robin, the start rotating: every row sees the same drift. */
    l1_set_tolerant(l1, TRUE);
    for (int r = 1; r <= rounds; r++) {
        for (guint i = 0; i < rows->len; i++) {
            int tries = 0;

            while (!cycle(l1, rows->pdata[(i + r) % rows->len], r)) {
                if (++tries == 3) {
                    g_error("L1 lost 3 times in one cycle");
                }
                l1_again(l1);
            }
        }
    }
    l1_free(l1);
    if (csv) {
        fclose(csv);
    }

    g_string_append_printf(md,
        "### Host-update blackout, phase by phase (L1 host under TCG, "
        "fs-dax on an emulated NVDIMM; %d rounds, median [min–max] ms)\n\n"
        "Measured %s by `bench/cpr-blackout` (bench/blackout.c).  Each "
        "cycle: N qtest L2 VMs (128 MiB, RAM on /mnt/pmem) started "
        "normally, saved together by `cpr-host-update save` (pmem:, "
        "patched QEMU; or `--scheme=file`, stock QEMU, each image and its "
        "directory fsynced after `completed`), reboot command `reboot-l2 "
        "quit-all && kexec -e` (SIGTERM to every QEMU as at a host's "
        "shutdown, then kexec), L1 boots, `cpr-host-update restore`, RAM "
        "patterns checked.  Nested TCG inflates every absolute number; "
        "the breakdown and the ratios are what count.%s\n\n"
        "| N | transport |", rounds, date,
        l1_losses ? g_strdup_printf("  L1's QEMU died %d time(s) during "
                                    "the run (stock QEMU's MTTCG); those "
                                    "cycles were run again after a fresh "
                                    "boot.", l1_losses) : "");
    for (int p = 0; p < N_PHASES; p++) {
        g_string_append_printf(md, " %s |", phase_names[p]);
    }
    g_string_append(md, " total | total / file | all but kexec and mount "
                    "| that / file |\n|---|---|");
    for (int p = 0; p <= N_PHASES + 3; p++) {
        g_string_append(md, "---|");
    }
    g_string_append(md, "\n");
    for (guint i = 0; i < rows->len; i++) {
        Row *row = rows->pdata[i];
        Row *file = !row->file && i + 1 < rows->len &&
                    ((Row *)rows->pdata[i + 1])->file ? rows->pdata[i + 1]
                    : row->file ? row : NULL;
        g_autofree char *tot = ms(row->total);
        g_autofree char *side = ms(row->vm_side);

        g_string_append_printf(md, "| %u | %s |", row->n,
                               row->file ? "file (stock)" : "pmem");
        for (int p = 0; p < N_PHASES; p++) {
            g_autofree char *c = ms(row->phases[p]);

            g_string_append_printf(md, " %s |", c);
        }
        if (file) {
            g_string_append_printf(md, " %s | %.2f | %s | %.2f |\n", tot,
                                   med(row->total) / med(file->total), side,
                                   med(row->vm_side) / med(file->vm_side));
        } else {
            g_string_append_printf(md, " %s | - | %s | - |\n", tot, side);
        }
    }
    g_string_append(md,
        "\nPer VM (every VM of every round): pre-stop = `migrate` → STOP, "
        "pause = STOP → `completed`, in it (QEMU's trace) VM stop and "
        "device save, commit = pmem: the transport's commit inside the "
        "pause, file: the fdatasync()s after it, QEMU start = spawn → QMP, "
        "restore = `migrate-incoming` → RESUME.\n\n"
        "| N | transport | pre-stop ms | pause ms | VM stop ms "
        "| device save ms | commit / sync ms | QEMU start ms | restore ms |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (guint i = 0; i < rows->len; i++) {
        Row *row = rows->pdata[i];
        g_autofree char *a = ms(row->pre_stop);
        g_autofree char *b = ms(row->pause);
        g_autofree char *e = ms(row->commit);
        g_autofree char *f = ms(row->vm_stop);
        g_autofree char *g = ms(row->device_save);
        g_autofree char *c = ms(row->vm_start);
        g_autofree char *d = ms(row->vm_restore);

        g_string_append_printf(md, "| %u | %s | %s | %s | %s | %s | %s | %s "
                               "| %s |\n", row->n,
                               row->file ? "file (stock)" : "pmem",
                               a, b, f, g, e, c, d);
    }
    g_file_set_contents(md_path, md->str, -1, NULL);
    printf("%s\nwrote %s, %s\n", md->str, md_path, csv_path);
    if (!keep) {
        g_autofree char *rm = g_strdup_printf("rm -rf '%s'", dir);

        if (system(rm) != 0) {
            fprintf(stderr, "cpr-blackout: could not remove %s\n", dir);
        }
    } else {
        fprintf(stderr, "cpr-blackout: L1's files are in %s\n", dir);
    }
    return 0;
}
