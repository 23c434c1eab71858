/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The issue-18 targets table: per target the measured medians, their
 * difference or ratio, the target and whether this run met it.  Printed,
 * never asserted (the smoke test asserts no timing).  Reads the medians
 * the parts left with bench_target_set(): first-save-cold-restore.c
 * (cases a, b, d) and full-ram.c's mapped-ram rows (case c).
 */
#include "bench.h"

#include <math.h>

typedef enum { AT_MOST_PLUS, AT_MOST_RATIO, AT_LEAST_RATIO } Kind;

typedef struct {
    Report *r;
    JsonBuilder *j;
    guint met, missed;
} Table;

/* row -- one target: @a against @b (ms or GB/s), @goal per @kind */
static void row(Table *t, const char *what, const char *a_name, double a,
                const char *b_name, double b, Kind kind, double goal,
                const char *unit)
{
    double d = kind == AT_MOST_PLUS ? a - b : a / b;
    gboolean met = kind == AT_LEAST_RATIO ? d >= goal : d <= goal;
    g_autofree char *measured = kind == AT_MOST_PLUS
        ? g_strdup_printf("%+.2f %s", d, unit) : g_strdup_printf("%.2fx", d);
    g_autofree char *target = kind == AT_MOST_PLUS
        ? g_strdup_printf("≤ %+.2f %s", goal, unit)
        : g_strdup_printf("%s %.2fx", kind == AT_LEAST_RATIO ? "≥" : "≤", goal);
    const char *verdict = isnan(d) ? "not measured" : met ? "met" : "**not met**";

    if (!isnan(d)) {
        met ? t->met++ : t->missed++;
    }
    if (isnan(d)) {
        g_string_append_printf(t->r->md, "| %s | - | - | - | %s | %s |\n",
                               what, target, verdict);
    } else if (*unit) {
        g_string_append_printf(t->r->md,
            "| %s | %s %.2f %s | %s %.2f %s | %s | %s | %s |\n",
            what, a_name, a, unit, b_name, b, unit, measured, target, verdict);
    } else {        /* a ratio measured per round: no reference value */
        g_string_append_printf(t->r->md, "| %s | %s | %s | %s | %s | %s |\n",
                               what, a_name, b_name, measured, target, verdict);
    }
    json_builder_begin_object(t->j);
    json_builder_set_member_name(t->j, "target");
    json_builder_add_string_value(t->j, what);
    json_builder_set_member_name(t->j, "measured");
    json_builder_add_double_value(t->j, isnan(a) ? -1 : a);
    json_builder_set_member_name(t->j, "reference");
    json_builder_add_double_value(t->j, isnan(b) ? -1 : b);
    json_builder_set_member_name(t->j, kind == AT_MOST_PLUS ? "difference"
                                                           : "ratio");
    json_builder_add_double_value(t->j, isnan(d) ? -1 : d);
    json_builder_set_member_name(t->j, "goal");
    json_builder_add_double_value(t->j, goal);
    json_builder_set_member_name(t->j, "met");
    json_builder_add_boolean_value(t->j, !isnan(d) && met);
    json_builder_end_object(t->j);
}

/* fresh -- a first-save-cold-restore median, ms */
static double fresh(const Report *r, const char *col, const char *guest,
                    const char *medium, const char *variant)
{
    g_autofree char *key = g_strdup_printf("fresh/%s/%s/%s/%s", col, guest,
                                           medium, variant);

    return bench_target_get(r, key) / 1e3;
}

static void fresh_rows(Table *t, const char *guest, const char *medium)
{
    const Report *r = t->r;
    gboolean ext4 = g_str_equal(medium, "ext4");
    g_autofree char *a = g_strdup_printf("a. first save, `migrate` → STOP, "
                                         "%s guest, %s", guest, medium);
    g_autofree char *ap = g_strdup_printf("a. same, source started with "
                                          "x-preload-transports, %s, %s",
                                          guest, medium);
    g_autofree char *b = g_strdup_printf("b. cold restore, `migrate-incoming`"
                                         " → `running`, %s, %s", guest, medium);
    g_autofree char *d = g_strdup_printf("d. pause, STOP → `completed`, "
                                         "first save, %s, %s", guest, medium);
    double fp = fresh(r, "pre_stop", guest, medium, "file(patched)");

    row(t, a, "pmem", fresh(r, "pre_stop", guest, medium, "pmem"),
        "file(patched)", fp, AT_MOST_PLUS, 0.3, "ms");
    if (!ext4) {
        row(t, ap, "pmem", fresh(r, "pre_stop", guest, medium,
                                 "pmem, preloaded"),
            "file(patched)", fp, AT_MOST_PLUS, 0.3, "ms");
    }
    row(t, b, "pmem", fresh(r, "running", guest, medium, "pmem"),
        "file(patched)", fresh(r, "running", guest, medium, "file(patched)"),
        AT_MOST_PLUS, 0.2, "ms");
    if (ext4) {
        row(t, d, "pmem", fresh(r, "pause", guest, medium, "pmem"),
            "file(stock)+fdatasync",
            fresh(r, "pause_fdatasync", guest, medium, "file(stock)"),
            AT_MOST_RATIO, 1.0, "ms");
    } else {
        row(t, d, "pmem", fresh(r, "pause", guest, medium, "pmem"),
            "file(patched)", fresh(r, "pause", guest, medium, "file(patched)"),
            AT_MOST_RATIO, 1.0, "ms");
    }
}

static double mapped(const Report *r, const char *what, guint gib, guint ch,
                     const char *transport)
{
    g_autofree char *key = transport
        ? g_strdup_printf("mapped/%s/%u/%u/%s", what, gib, ch, transport)
        : g_strdup_printf("mapped/%s/%u/%u", what, gib, ch);

    return bench_target_get(r, key);
}

static void mapped_rows(Table *t, guint gib, guint ch)
{
    const Report *r = t->r;
    g_autofree char *first = g_strdup_printf("c. first full-RAM save into no "
                                             "image, mapped-ram, %u GiB, %u "
                                             "channels", gib, ch);
    g_autofree char *steady = g_strdup_printf("c. steady-state saves (2-3), "
                                              "%u GiB, %u channels: pmem / "
                                              "stock", gib, ch);
    g_autofree char *mc = g_strdup_printf("c. steady-state save (3rd) vs "
                                          "memcpy, %u GiB, 0 channels", gib);
    double sr = mapped(r, "steady_ratio", gib, ch, NULL);

    row(t, first, "pmem", mapped(r, "first", gib, ch, "pmem"),
        "file(stock)", mapped(r, "first", gib, ch, "file(stock)"),
        AT_LEAST_RATIO, 1.0, "GB/s");
    row(t, steady, "pmem / stock, per round", sr, "-", 1.0, AT_LEAST_RATIO,
        3.4, "");
    if (ch == 0) {
        row(t, mc, "pmem", mapped(r, "steady", gib, ch, "pmem"), "memcpy",
            bench_target_get(r, "memcpy_gbs"), AT_LEAST_RATIO, 0.5, "GB/s");
    }
}

void bench_targets(Report *r, gsize at)
{
    const BenchOpts *o = r->opts;
    g_autoptr(GString) saved = r->md;
    Table t = { r, r->json, 0, 0 };
    static const char *const guests[] = { "linux", "qtest-devices" };

    r->md = g_string_new("");
    g_string_append(r->md,
        "\n### Issue-18 targets (medians of this run; printed, not "
        "asserted)\n\n"
        "a, b, d: the first-save-cold-restore rows below (fresh QEMU "
        "processes, same patched QEMU for pmem: and file:); c: the "
        "mapped-ram rows (first save into no image; steady state = saves "
        "2-3, the median of per-round ratios).  The targets hold for "
        "/dev/shm; the ext4 rows say where ext4 differs (its pause target: "
        "stock `file:` plus its fdatasync).\n\n"
        "| target | measured | reference | difference / ratio | target "
        "| this run |\n|---|---|---|---|---|---|\n");
    json_builder_set_member_name(r->json, "issue18_targets");
    json_builder_begin_array(r->json);
    for (guint m = 0; o->run_first_save && m < 2; m++) {
        for (guint g = 0; g < G_N_ELEMENTS(guests); g++) {
            if (g == 0 ? !o->guest_linux || m : !o->guest_qtest) {
                continue;
            }
            fresh_rows(&t, guests[g], m ? "ext4" : "shm");
        }
    }
    for (guint g = 0; o->run_full_ram && o->full_ram_mapped &&
                      g < o->full_ram_gib->len; g++) {
        for (guint c = 0; c < o->mapped_channels->len; c++) {
            mapped_rows(&t, g_array_index(o->full_ram_gib, guint, g),
                        g_array_index(o->mapped_channels, guint, c));
        }
    }
    json_builder_end_array(r->json);
    g_string_append_printf(r->md, "\n%u met, %u not met.\n", t.met,
                           t.missed);
    g_string_insert(saved, at, r->md->str);
    g_string_free(r->md, TRUE);
    r->md = g_steal_pointer(&saved);
}
