/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs the built cpr-pmem on real images made with the writer API and
 * checks exit codes, messages and the JSON it prints.
 */
#include "reader.h"
#include "writer.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QEMU_VERSION "10.0.13-tool-test"

static char *dir;

typedef struct Run {
    int status;
    char *out, *err;
} Run;

static char *path_of(const char *name)
{
    return g_build_filename(dir, name, NULL);
}

static void save(const char *path, size_t len, unsigned seed)
{
    char *err = NULL;
    CprWriter *w = cpr_writer_open(path, QEMU_VERSION, &err);
    uint8_t *buf = g_malloc(len + 1);

    g_assert_null(err);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 31 + seed);
    }
    g_assert_cmpint(cpr_writer_append(w, buf, len, &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit(w, &err), ==, 0);
    cpr_writer_close(w);
    g_free(buf);
}

/* Run cpr-pmem with up to three arguments (NULL-terminated). */
static Run run(const char *a, const char *b, const char *c)
{
    const char *argv[] = { CPR_PMEM, a, b, c, NULL };
    GError *error = NULL;
    Run r = { 0 };

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT,
                               NULL, NULL, &r.out, &r.err, &r.status,
                               &error));
    g_assert_true(WIFEXITED(r.status));
    r.status = WEXITSTATUS(r.status);
    g_test_message("cpr-pmem %s %s %s -> %d\n%s%s", a ? a : "",
                   b ? b : "", c ? c : "", r.status, r.out, r.err);
    return r;
}

static void run_free(Run *r)
{
    g_free(r->out);
    g_free(r->err);
}

static void assert_run(const char *a, const char *b, const char *c,
                       int status, const char *out, const char *err)
{
    Run r = run(a, b, c);

    g_assert_cmpint(r.status, ==, status);
    if (out && !strstr(r.out, out)) {
        g_error("stdout lacks \"%s\":\n%s", out, r.out);
    }
    if (err && !strstr(r.err, err)) {
        g_error("stderr lacks \"%s\":\n%s", err, r.err);
    }
    run_free(&r);
}

static void test_usage(void)
{
    char *img = path_of("usage");

    assert_run("--help", NULL, NULL, 0, "Usage: cpr-pmem", NULL);
    assert_run("info", "--help", NULL, 0, "Exit status", NULL);
    assert_run(NULL, NULL, NULL, 2, NULL, "missing command");
    assert_run("frobnicate", img, NULL, 2, NULL, "unknown command");
    assert_run("info", NULL, NULL, 2, NULL, "expected exactly one IMAGE");
    assert_run("check", img, img, 2, NULL, "expected exactly one IMAGE");
    assert_run("info", "--output=xml", img, 2, NULL, "human or json");
    assert_run("check", "--output=json", img, 2, NULL, "only for info");
    assert_run("--bogus", NULL, NULL, 2, NULL, "--help");
    /* A missing file is an I/O error, and invalidate never creates it. */
    assert_run("check", img, NULL, 2, NULL, "cannot open");
    assert_run("info", img, NULL, 2, NULL, "No such file");
    assert_run("invalidate", img, NULL, 2, NULL, "cannot open");
    g_assert_false(g_file_test(img, G_FILE_TEST_EXISTS));
    g_free(img);
}

static void test_info_human(void)
{
    char *img = path_of("human");
    char *want;

    save(img, 5000, 1);
    save(img, 7000, 2);
    want = g_strdup_printf("image: %s\n", img);
    assert_run("info", img, NULL, 0, want, NULL);
    assert_run("info", "--output=human", img, 0,
               "committed generation: 2 (slot 0)", NULL);
    assert_run("info", img, NULL, 0, "slot 1: valid\n  generation: 1\n", NULL);
    assert_run("info", img, NULL, 0, "payload length: 7000\n", NULL);
    assert_run("info", img, NULL, 0, "qemu version: " QEMU_VERSION, NULL);
    assert_run("info", img, NULL, 0, " UTC (", NULL);
    assert_run("info", img, NULL, 0, "loadable: yes\n", NULL);
    g_free(want);
    g_free(img);
}

static JsonObject *info_json(const char *img, JsonParser *parser)
{
    Run r = run("info", "--output=json", img);
    GError *error = NULL;

    g_assert_cmpint(r.status, ==, 0);
    g_assert_true(json_parser_load_from_data(parser, r.out, -1, &error));
    run_free(&r);
    return json_node_get_object(json_parser_get_root(parser));
}

static void test_info_json(void)
{
    char *img = path_of("json");
    JsonParser *parser = json_parser_new();
    JsonObject *o, *sb, *s0, *s1;
    JsonArray *slots;
    CprImageHeader h;
    char *err = NULL, *xxh;

    save(img, 5000, 1);
    save(img, 7000, 2);
    g_assert_cmpint(cpr_reader_inspect(img, &h, &err), ==, 0);
    o = info_json(img, parser);
    g_assert_cmpstr(json_object_get_string_member(o, "filename"), ==, img);
    g_assert_cmpint(json_object_get_int_member(o, "file-size"), ==,
                    h.file_size);
    g_assert_cmpint(json_object_get_int_member(o, "committed-generation"),
                    ==, 2);
    g_assert_true(json_object_get_boolean_member(o, "loadable"));
    g_assert_false(json_object_has_member(o, "refusal"));
    sb = json_object_get_object_member(o, "superblock");
    g_assert_cmpstr(json_object_get_string_member(sb, "state"), ==, "valid");
    g_assert_cmpint(json_object_get_int_member(sb, "format-version"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(sb, "created-ns"), ==,
                    h.sb.ctime_ns);
    g_assert_true(g_str_has_suffix(
        json_object_get_string_member(sb, "created"), " UTC"));
    slots = json_object_get_array_member(o, "slots");
    g_assert_cmpint(json_array_get_length(slots), ==, 2);
    s0 = json_array_get_object_element(slots, 0);
    s1 = json_array_get_object_element(slots, 1);
    g_assert_cmpint(json_object_get_int_member(s0, "generation"), ==, 2);
    g_assert_cmpint(json_object_get_int_member(s1, "generation"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(s0, "payload-length"), ==,
                    7000);
    g_assert_cmpint(json_object_get_int_member(s0, "payload-offset"), ==,
                    h.slots.rec[0].payload_off);
    xxh = g_strdup_printf("0x%016" G_GINT64_MODIFIER "x",
                          h.slots.rec[0].payload_xxh3);
    g_assert_cmpstr(json_object_get_string_member(s0, "payload-xxh3"), ==,
                    xxh);
    g_assert_cmpstr(json_object_get_string_member(s0, "qemu-version"), ==,
                    QEMU_VERSION);
    g_assert_cmpstr(json_object_get_string_member(s0, "kernel-release"), ==,
                    h.slots.rec[0].kernel_release);
    g_assert_nonnull(json_object_get_string_member(s0, "cmdline-fingerprint"));
    g_assert_false(json_object_get_boolean_member(s0, "invalidated"));
    g_free(xxh);
    g_object_unref(parser);
    g_free(img);
}

static void test_check(void)
{
    char *img = path_of("check");
    char *want;
    uint8_t b;
    int fd;

    save(img, 5000, 1);
    want = g_strdup_printf("%s: OK, generation 1, 5000 bytes", img);
    assert_run("check", img, NULL, 0, want, NULL);
    g_free(want);
    /* Flip the first payload byte: the same message as the transport. */
    fd = open(img, O_RDWR);
    g_assert_cmpint(pread(fd, &b, 1, CPR_PAYLOAD_AREA), ==, 1);
    b ^= 1;
    g_assert_cmpint(pwrite(fd, &b, 1, CPR_PAYLOAD_AREA), ==, 1);
    close(fd);
    want = g_strdup_printf("%s: image (generation 1) is corrupt: payload "
                           "checksum mismatch\n", img);
    assert_run("check", img, NULL, 1, NULL, want);
    assert_run("info", img, NULL, 0, "loadable: no: ", NULL);
    g_free(want);
    /* Not an image at all. */
    g_assert_true(g_file_set_contents(img, "hello", 5, NULL));
    assert_run("check", img, NULL, 1, NULL, "too short");
    assert_run("info", img, NULL, 1, NULL, "too short");
    assert_run("invalidate", img, NULL, 1, NULL, "too short");
    assert_run("check", dir, NULL, 1, NULL, "is a directory");
    g_free(img);
}

static void test_create(void)
{
    char *img = path_of("create");
    char *other = path_of("create-not-an-image");
    struct stat st;

    assert_run("create", "--size=16M", img, 0, "16777216 bytes", NULL);
    g_assert_cmpint(stat(img, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 16 << 20);
    assert_run("check", img, NULL, 1, NULL, "no committed image");
    save(img, 5000, 3);
    /* Growing an image keeps its saves. */
    assert_run("create", "--size=32M", img, 0, NULL, NULL);
    assert_run("check", img, NULL, 0, "OK, generation 1, 5000 bytes", NULL);
    g_assert_cmpint(stat(img, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 32 << 20);
    assert_run("create", img, NULL, 2, NULL, "create needs it");
    assert_run("check", "--size=1G", img, 2, NULL, "--size is for create");
    assert_run("create", "--size=12Q", img, 2, NULL, "not '12Q'");
    assert_run("create", "--size=0", img, 2, NULL, "positive size");
    g_assert_true(g_file_set_contents(other, "hello", 5, NULL));
    assert_run("create", "--size=1M", other, 1, NULL, "refusing to overwrite");
    g_free(img);
    g_free(other);
}

static void test_invalidate(void)
{
    char *img = path_of("invalidate");
    JsonParser *parser = json_parser_new();
    JsonObject *o, *s1;
    char *err = NULL, *want;
    struct stat before, after;

    save(img, 5000, 1);
    save(img, 6000, 2);
    g_assert_cmpint(stat(img, &before), ==, 0);
    assert_run("invalidate", img, NULL, 0, "invalidated (generation 3)", NULL);
    /* It writes one record: the file does not grow for a save. */
    g_assert_cmpint(stat(img, &after), ==, 0);
    g_assert_cmpint(after.st_size, ==, before.st_size);
    want = g_strdup_printf("%s: image (generation 3) was invalidated", img);
    assert_run("check", img, NULL, 1, NULL, want);
    g_assert_null(cpr_reader_open(img, &err));
    g_assert_cmpstr(err, ==, want);
    free(err);
    err = NULL;
    assert_run("info", img, NULL, 0, "flags: 0x1 (INVALIDATED)", NULL);
    o = info_json(img, parser);
    g_assert_cmpint(json_object_get_int_member(o, "committed-generation"),
                    ==, 3);
    g_assert_false(json_object_get_boolean_member(o, "loadable"));
    g_assert_cmpstr(json_object_get_string_member(o, "refusal"), ==, want);
    s1 = json_array_get_object_element(
        json_object_get_array_member(o, "slots"), 1);
    g_assert_true(json_object_get_boolean_member(s1, "invalidated"));
    /* It keeps describing the payload it invalidated. */
    g_assert_cmpint(json_object_get_int_member(s1, "payload-length"), ==,
                    6000);
    /* Twice is fine; then a new save loads again. */
    assert_run("invalidate", img, NULL, 0, "(generation 4)", NULL);
    save(img, 7000, 3);
    assert_run("check", img, NULL, 0, "OK, generation 5, 7000 bytes", NULL);
    g_free(want);
    g_object_unref(parser);
    g_free(img);
}

static void remove_dir(void)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    if (system(cmd) != 0) {
        g_printerr("could not remove %s\n", dir);
    }
    g_free(cmd);
}

int main(int argc, char **argv)
{
    const char *base = g_getenv("CPR_TEST_DIR");
    int ret;

    g_test_init(&argc, &argv, NULL);
    dir = g_strdup_printf("%s/cpr-tool-XXXXXX", base ? base : g_get_tmp_dir());
    g_assert_nonnull(g_mkdtemp(dir));
    g_test_add_func("/tool/usage", test_usage);
    g_test_add_func("/tool/info-human", test_info_human);
    g_test_add_func("/tool/info-json", test_info_json);
    g_test_add_func("/tool/check", test_check);
    g_test_add_func("/tool/invalidate", test_invalidate);
    g_test_add_func("/tool/create", test_create);
    ret = g_test_run();
    remove_dir();
    g_free(dir);
    return ret;
}
