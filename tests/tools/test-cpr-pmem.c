/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Runs the built cpr-pmem on real images made with the writer API and
 * checks exit codes, messages and the JSON it prints.
 */
#include "binding.h"
#include "reader.h"
#include "vmdesc.h"
#include "writer.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

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
    CprWriter *w = cpr_writer_open_vm(path,
                                      &(CprHost){ QEMU_VERSION, NULL, NULL },
                                      NULL, &err);
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
    assert_run("info", img, NULL, 0, "stream length: 7000\n", NULL);
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
    CprImage h;
    char *err = NULL, *xxh;

    save(img, 5000, 1);
    save(img, 7000, 2);
    g_assert_cmpint(cpr_image_open_read(img, &h, &err), ==, 0);
    cpr_image_close(&h);
    o = info_json(img, parser);
    g_assert_cmpstr(json_object_get_string_member(o, "filename"), ==, img);
    g_assert_cmpint(json_object_get_int_member(o, "file-size"), ==,
                    h.size);
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
    g_assert_cmpint(json_object_get_int_member(s0, "stream-length"), ==,
                    7000);
    g_assert_cmpint(json_object_get_int_member(s0, "payload-length"), ==,
                    7000 + json_object_get_int_member(
                        s0, "vm-description-length"));
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

/* Sizes that overflow, exceed 2^60 or are not plain digits are usage
 * errors, before any file is touched: never wrapped into "success". */
static void test_create_sizes(void)
{
    static const char *const too_large[] = {
        "--size=18446744073709551615",      /* UINT64_MAX */
        "--size=18446744073709551616",      /* 2^64: ERANGE */
        "--size=99999999999999999999999",
        "--size=16777216T",                 /* 2^64 */
        "--size=1048577T",                  /* 2^60 + 2^40 */
        "--size=1152921504606846977",       /* 2^60 + 1 */
        "--size=1073741825G",
    };
    static const char *const malformed[] = {
        "--size= -1", "--size=-1", "--size=+5", "--size= 5", "--size=5 ",
        "--size=0x10", "--size=1.5G", "--size=", "--size=1KB", "--size=0T",
    };
    char *img = path_of("create-sizes");
    struct stat st;

    for (size_t i = 0; i < G_N_ELEMENTS(too_large); i++) {
        assert_run("create", too_large[i], img, 2, NULL, "too large");
        assert_run("create", too_large[i], img, 2, NULL, "at most 1048576T");
        g_assert_false(g_file_test(img, G_FILE_TEST_EXISTS));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(malformed); i++) {
        assert_run("create", malformed[i], img, 2, NULL, "positive size");
        g_assert_false(g_file_test(img, G_FILE_TEST_EXISTS));
    }
    /* What is printed is the file as made: 8 MiB at least. */
    assert_run("create", "--size=1K", img, 0, "8388608 bytes", NULL);
    g_assert_cmpint(stat(img, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 8 << 20);
    assert_run("create", "--size=9M", img, 0, "10485760 bytes", NULL);
    g_free(img);
}

static void forge_slot(const char *img, unsigned slot, const CprRecord *rec)
{
    uint8_t buf[CPR_REC_SIZE];
    int fd = open(img, O_RDWR);

    cpr_record_encode(rec, buf);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), CPR_SLOT_OFFSET(slot)), ==,
                    sizeof(buf));
    close(fd);
}

static void forge_sb_ctime(const char *img, uint64_t ns)
{
    uint8_t buf[CPR_SB_SIZE];
    CprSuperblock sb;
    int fd = open(img, O_RDWR);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    g_assert_cmpint(cpr_sb_decode(buf, sizeof(buf), &sb), ==, CPR_DECODE_OK);
    sb.ctime_ns = ns;
    cpr_sb_encode(&sb, buf);
    g_assert_cmpint(pwrite(fd, buf, sizeof(buf), 0), ==, sizeof(buf));
    close(fd);
}

/* No integer in the document is negative, and no string is a negative
 * number either. */
static void assert_no_negative(JsonNode *node, const char *where)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        GList *names = json_object_get_members(o);

        for (GList *l = names; l; l = l->next) {
            assert_no_negative(json_object_get_member(o, l->data), l->data);
        }
        g_list_free(names);
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            assert_no_negative(json_array_get_element(a, i), where);
        }
    } else if (JSON_NODE_HOLDS_VALUE(node)) {
        GType t = json_node_get_value_type(node);

        if (t == G_TYPE_INT64 && json_node_get_int(node) < 0) {
            g_error("\"%s\" is negative: %" G_GINT64_FORMAT, where,
                    json_node_get_int(node));
        }
        if (t == G_TYPE_STRING && json_node_get_string(node)[0] == '-') {
            g_error("\"%s\" is \"%s\"", where, json_node_get_string(node));
        }
    }
}

static JsonObject *slot_json(JsonObject *o, guint i)
{
    return json_array_get_object_element(
        json_object_get_array_member(o, "slots"), i);
}

static void assert_string_member(JsonObject *o, const char *name,
                                 const char *want)
{
    JsonNode *n = json_object_get_member(o, name);

    g_assert_nonnull(n);
    g_assert_cmpint(json_node_get_value_type(n), ==, G_TYPE_STRING);
    g_assert_cmpstr(json_node_get_string(n), ==, want);
}

/*
 * Values above INT64_MAX in every unsigned field a valid record or the
 * superblock can carry (their checksums re-signed): exact decimal
 * strings in JSON and decimals in human output, never negative or
 * wrapped.  A generation above INT64_MAX makes the record invalid: its
 * slot is shown torn, without fields, and the other slot is committed.
 */
static void test_info_large_values(void)
{
    char *img = path_of("large-values");
    JsonParser *parser = json_parser_new();
    CprRecord rec = {
        .version = 1, .generation = 2,
        .payload_off = (1ull << 63) + 5, .payload_len = UINT64_MAX,
        .payload_xxh3 = UINT64_MAX, .ctime_ns = UINT64_MAX - 1,
        .qemu_version = "forged", .kernel_release = "forged",
        .cmdline_fp = 1ull << 63,
    };
    CprImage h;
    JsonObject *o, *s0;
    char *err = NULL, *want;
    Run r;

    save(img, 5000, 1);                 /* generation 1, slot 1 */
    forge_slot(img, 0, &rec);
    forge_sb_ctime(img, UINT64_MAX);
    g_assert_cmpint(cpr_image_open_read(img, &h, &err), ==, 0);
    cpr_image_close(&h);
    g_assert_cmpint(h.slots.state[0], ==, CPR_DECODE_OK);

    o = info_json(img, parser);
    assert_no_negative(json_parser_get_root(parser), "(root)");
    g_assert_cmpint(json_object_get_int_member(o, "committed-generation"),
                    ==, 2);
    g_assert_false(json_object_get_boolean_member(o, "loadable"));
    assert_string_member(json_object_get_object_member(o, "superblock"),
                         "created-ns", "18446744073709551615");
    s0 = slot_json(o, 0);
    g_assert_cmpstr(json_object_get_string_member(s0, "state"), ==, "valid");
    g_assert_cmpint(json_object_get_int_member(s0, "generation"), ==, 2);
    assert_string_member(s0, "payload-offset", "9223372036854775813");
    assert_string_member(s0, "payload-length", "18446744073709551615");
    assert_string_member(s0, "saved-ns", "18446744073709551614");
    assert_string_member(s0, "payload-xxh3", "0xffffffffffffffff");
    assert_string_member(s0, "cmdline-fingerprint", "0x8000000000000000");
    r = run("info", img, NULL);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_nonnull(strstr(r.out, "payload offset: 9223372036854775813\n"));
    g_assert_nonnull(strstr(r.out,
                            "payload length: 18446744073709551615\n"));
    g_assert_nonnull(strstr(r.out, "(18446744073709551614 ns)\n"));
    g_assert_nonnull(strstr(r.out, "(18446744073709551615 ns)\n"));
    g_assert_null(strstr(r.out, ": -"));
    g_assert_null(strstr(r.out, "(-"));
    run_free(&r);

    /* Generations above INT64_MAX are not valid records. */
    for (uint64_t gen = (1ull << 63) + 2; gen; gen = gen == UINT64_MAX - 1 ?
         0 : UINT64_MAX - 1) {
        rec.generation = gen;
        forge_slot(img, 0, &rec);
        o = info_json(img, parser);
        assert_no_negative(json_parser_get_root(parser), "(root)");
        g_assert_cmpint(json_object_get_int_member(o, "committed-generation"),
                        ==, 1);
        s0 = slot_json(o, 0);
        g_assert_cmpstr(json_object_get_string_member(s0, "state"), ==,
                        "torn");
        g_assert_false(json_object_has_member(s0, "generation"));
        g_assert_false(json_object_has_member(s0, "payload-offset"));
        g_assert_true(json_object_get_boolean_member(o, "loadable"));
        assert_run("info", img, NULL, 0, "slot 0: torn\nslot 1: valid\n",
                   NULL);
        assert_run("check", img, NULL, 0, "OK, generation 1, 5000 bytes",
                   NULL);
    }

    /* INT64_MAX itself is the last generation: it loads, prints as a
     * number, and no save can follow it. */
    g_assert_cmpint(h.slots.state[1], ==, CPR_DECODE_OK);
    rec = h.slots.rec[1];
    rec.generation = INT64_MAX;         /* odd: slot 1 */
    forge_slot(img, 1, &rec);
    o = info_json(img, parser);
    g_assert_cmpint(json_object_get_int_member(o, "committed-generation"),
                    ==, INT64_MAX);
    assert_run("check", img, NULL, 0,
               "OK, generation 9223372036854775807, 5000 bytes", NULL);
    g_assert_null(cpr_writer_open_vm(img,
                                     &(CprHost){ QEMU_VERSION, NULL, NULL },
                                     NULL, &err));
    want = g_strdup_printf("%s: generation counter exhausted", img);
    g_assert_cmpstr(err, ==, want);
    free(err);
    g_free(want);
    g_object_unref(parser);
    g_free(img);
}

/*
 * A record's QEMU version and kernel release are the file's bytes: text
 * output shows terminal escapes (ESC, BEL, DEL, the 8-bit CSI, bytes
 * that are not UTF-8) escaped, never raw; JSON stays clean too.
 */
static void test_info_escapes(void)
{
    static const char evil[] = "Q\x1b]0;owned\x07\x1b[2J\xc2\x9b" "31m\x7f\xff";
    char *img = path_of("escapes");
    JsonParser *parser = json_parser_new();
    CprImage h;
    CprRecord rec;
    char *err = NULL;
    Run r;

    save(img, 5000, 1);                 /* generation 1, slot 1 */
    g_assert_cmpint(cpr_image_open_read(img, &h, &err), ==, 0);
    cpr_image_close(&h);
    rec = h.slots.rec[1];
    g_strlcpy(rec.qemu_version, evil, sizeof(rec.qemu_version));
    g_strlcpy(rec.kernel_release, evil, sizeof(rec.kernel_release));
    forge_slot(img, 1, &rec);
    r = run("info", img, NULL);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_null(strchr(r.out, '\x1b'));
    g_assert_null(strchr(r.out, '\x07'));
    g_assert_null(strchr(r.out, '\x7f'));
    g_assert_null(strstr(r.out, "\xc2\x9b"));
    g_assert_true(g_utf8_validate(r.out, -1, NULL));
    g_assert_nonnull(strstr(r.out, "qemu version: Q\\x1b]0;owned\\x07"
                                   "\\x1b[2J\\u{9b}31m\\x7f\\xff\n"));
    g_assert_nonnull(strstr(r.out, "kernel release: Q\\x1b]0;owned"));
    run_free(&r);
    info_json(img, parser);             /* parses: valid UTF-8 JSON */
    g_object_unref(parser);
    g_free(img);
}

/*
 * What is not a regular file, named directly or through a symlink
 * someone planted, is refused without being opened (opening a device or
 * a FIFO can have effects): inotify sees no open of the FIFO by info,
 * check, wait or load.
 */
static void test_not_opened(void)
{
    char *fifo = path_of("fifo"), *link = path_of("fifo-link");
    const char *const cmds[] = { "info", "check", "wait", "load" };
    const char *const paths[] = { fifo, link };
    char buf[4096];
    int in;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_cmpint(symlink(fifo, link), ==, 0);
    in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    g_assert_cmpint(in, >=, 0);
    g_assert_cmpint(inotify_add_watch(in, fifo, IN_OPEN), >=, 0);
    for (size_t p = 0; p < G_N_ELEMENTS(paths); p++) {
        for (size_t c = 0; c < G_N_ELEMENTS(cmds); c++) {
            Run r = run(cmds[c], paths[p], NULL);

            g_assert_cmpint(r.status, >=, 1);
            if (read(in, buf, sizeof(buf)) > 0) {
                g_error("cpr-pmem %s %s opened the FIFO", cmds[c], paths[p]);
            }
            run_free(&r);
        }
    }
    close(in);
    unlink(link);
    unlink(fifo);
    g_free(link);
    g_free(fifo);
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
    g_assert_cmpint(json_object_get_int_member(s1, "stream-length"), ==,
                    6000);
    /* Twice is fine; then a new save loads again. */
    assert_run("invalidate", img, NULL, 0, "(generation 4)", NULL);
    save(img, 7000, 3);
    assert_run("check", img, NULL, 0, "OK, generation 5, 7000 bytes", NULL);
    g_free(want);
    g_object_unref(parser);
    g_free(img);
}

/*
 * A save of a VM whose guest RAM (1 MiB) is the file @ram, or anonymous
 * memory if @ram is NULL, as QEMU would describe it.
 */
static void save_vm(const char *image, const char *ram)
{
    static const CprHost host = { QEMU_VERSION, NULL, NULL };
    const uint64_t size = 1 << 20;
    int fd = -1;
    char *err = NULL;
    CprRamBlock b;
    CprDisk disk;
    CprWriter *w;
    QemuTransportVm qvm;
    CprVm vm;
    void *p;

    if (ram) {
        fd = open(ram, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE,
             MAP_SHARED | (ram ? 0 : MAP_ANONYMOUS), fd, 0);
    g_assert_true(p != MAP_FAILED);
    memset(p, 0x5a, size);
    b = (CprRamBlock){ "pc.ram", p, size, fd, 0, CPR_RAM_SHARED };
    /* and a disk: the RAM file's 1 MiB of 0x5a as a raw image */
    disk = (CprDisk){ "disk0", ram ? ram : "/nonexistent.raw", "file", size,
                      CPR_DISK_PROTOCOL };
    qvm = cpr_vm_abi(&b, 1, "pc-q35-10.0", "qemu64", &disk, 1);
    vm = (CprVm){ &qvm, NULL, 0 };
    w = cpr_writer_open_vm(image, &host, &vm, &err);
    g_assert_nonnull(w);
    g_assert_cmpint(cpr_writer_append(w, "stream", 6, &err), ==, 0);
    g_assert_cmpint(cpr_writer_commit_vm(w, &vm, &err), ==, 0);
    cpr_writer_close(w);
    munmap(p, size);
    if (fd >= 0) {
        close(fd);
    }
}

/* A directory on /dev/shm (tmpfs), removed by the caller. */
static char *shm_dir(void)
{
    char *d = g_strdup("/dev/shm/cpr-tool-XXXXXX");

    g_assert_nonnull(g_mkdtemp(d));
    return d;
}

static void rm_rf(const char *d)
{
    char *cmd = g_strdup_printf("rm -rf '%s'", d);

    g_assert_cmpint(system(cmd), ==, 0);
    g_free(cmd);
}

/* check --for=reboot: the build directory is on a disk filesystem (it
 * passes, with a note to sync), /dev/shm is not (it fails, saying why). */
static void test_check_reboot(void)
{
    char *img = path_of("reboot.cpr"), *ram = path_of("reboot.ram");
    char *shm = shm_dir();
    char *simg = g_build_filename(shm, "vm.cpr", NULL);
    char *sram = g_build_filename(shm, "vm.ram", NULL);
    char *want;

    save_vm(img, ram);
    assert_run("check", "--for=reboot", img, 0, "survives a host reboot "
               "(image: page-cache)", NULL);
    assert_run("check", "--for=kexec", img, 0, "survives a kexec (image: "
               "page-cache)", NULL);
    assert_run("check", "--for=reboot", img, 0, "note: guest RAM is in the "
               "page cache of a disk filesystem: it survives once written "
               "back, so run sync", NULL);
    assert_run("check", img, NULL, 0, "OK, generation 1, 6 bytes", NULL);

    save_vm(simg, sram);
    want = g_strdup_printf("%s: would not survive a host reboot: the image "
                           "is on volatile memory (tmpfs)\n%s: would not "
                           "survive a host reboot: the guest RAM of block "
                           "pc.ram in %s is on volatile memory (tmpfs)\n",
                           simg, simg, sram);
    assert_run("check", "--for=reboot", simg, 1, NULL, want);
    g_free(want);
    /* Nor a kexec: tmpfs belongs to the kernel. */
    want = g_strdup_printf("%s: would not survive a kexec: the image is on "
                           "volatile memory (tmpfs)\n%s: would not survive "
                           "a kexec: the guest RAM of block pc.ram in %s is "
                           "on volatile memory (tmpfs)\n", simg, simg, sram);
    assert_run("check", "--for=kexec", simg, 1, NULL, want);
    g_free(want);
    /* Plain check still passes: the image loads (until the reboot). */
    assert_run("check", simg, NULL, 0, "OK, generation 1", NULL);

    /* The image survives, its RAM does not. */
    save_vm(img, sram);
    want = g_strdup_printf("%s: would not survive a host reboot: the guest "
                           "RAM of block pc.ram in %s is on volatile memory "
                           "(tmpfs)\n", img, sram);
    assert_run("check", "--for=reboot", img, 1, NULL, want);
    g_free(want);
    save_vm(img, NULL);
    assert_run("check", "--for=reboot", img, 1, NULL, "guest RAM of block "
               "pc.ram is on volatile memory (anonymous memory)");
    /* An image of the previous release (record format 1) recorded no
     * RAM: its own medium decides, with a note. */
    save_vm(img, ram);
    {
        CprImage h;
        char *err = NULL;
        CprRecord rec;

        g_assert_cmpint(cpr_image_open_read(img, &h, &err), ==, 0);
        cpr_image_close(&h);
        rec = h.slots.rec[h.slots.newest];
        rec.version = 1;
        rec.payload_len = rec.stream_len;
        rec.payload_xxh3 = XXH3_64bits("stream", 6);
        forge_slot(img, (unsigned)h.slots.newest, &rec);
    }
    assert_run("check", "--for=reboot", img, 0, "note: the image (record "
               "format 1) did not record its guest RAM", NULL);
    assert_run("check", "--for=reboot", img, 0, "survives a host reboot "
               "(image: page-cache; RAM not recorded)", NULL);
    assert_run("info", img, NULL, 0, "saved vm: not recorded (record format "
               "1)", NULL);
    /* A refused image fails whatever it is for. */
    assert_run("invalidate", img, NULL, 0, NULL, NULL);
    assert_run("check", "--for=reboot", img, 1, NULL, "was invalidated");
    /* Usage. */
    assert_run("check", "--for=lunch", img, 2, NULL, "--for must be reboot "
               "or kexec");
    assert_run("info", "--for=reboot", img, 2, NULL, "only for check");
    rm_rf(shm);
    g_free(simg);
    g_free(sram);
    g_free(shm);
    g_free(ram);
    g_free(img);
}

/* info shows what the save recorded about its VM, and media classes. */
static void test_info_vm(void)
{
    char *img = path_of("info-vm.cpr"), *ram = path_of("info-vm.ram");
    JsonParser *parser = json_parser_new();
    JsonObject *o, *vm, *blk, *file, *disk;
    JsonArray *argv, *blocks;
    char *want;

    save_vm(img, ram);
    assert_run("info", img, NULL, 0, "media: page-cache (", NULL);
    assert_run("info", img, NULL, 0, "saved vm (generation 1):\n"
               "  description version: 2\n  seed: 0x", NULL);
    assert_run("info", img, NULL, 0, "  machine: pc-q35-10.0\n"
               "  cpu: qemu64\n  arguments (", NULL);
    assert_run("info", img, NULL, 0, "  ram blocks: 1\n"
               "  ram block: pc.ram\n    size: 1048576\n"
               "    flags: 0x1 (shared)\n    fd offset: 0\n"
               "    media: page-cache (", NULL);
    want = g_strdup_printf("    file: %s\n", ram);
    assert_run("info", img, NULL, 0, want, NULL);
    g_free(want);
    assert_run("info", img, NULL, 0, "    sampled pages: 64\n", NULL);
    want = g_strdup_printf("  disks: 1\n  disk: %s\n    node: disk0\n"
                           "    driver: file\n    size: 1048576\n"
                           "    read-only: no\n    device: ", ram);
    assert_run("info", img, NULL, 0, want, NULL);
    g_free(want);
    assert_run("info", img, NULL, 0, "    file size: 1048576\n", NULL);
    assert_run("info", img, NULL, 0, "    sampled blocks: 64\n", NULL);
    o = info_json(img, parser);
    disk = json_array_get_object_element(json_object_get_array_member(
        json_object_get_object_member(o, "vm"), "disks"), 0);
    g_assert_cmpstr(json_object_get_string_member(disk, "filename"), ==, ram);
    g_assert_cmpstr(json_object_get_string_member(disk, "driver"), ==,
                    "file");
    g_assert_false(json_object_get_boolean_member(disk, "read-only"));
    file = json_object_get_object_member(disk, "file");
    g_assert_cmpint(json_object_get_int_member(file, "size"), ==, 1 << 20);
    g_assert_cmpint(json_object_get_int_member(file, "sampled-blocks"), ==,
                    64);
    g_assert_true(json_object_has_member(file, "changed"));
    g_assert_cmpstr(json_object_get_string_member(
        json_object_get_object_member(o, "media"), "class"), ==, "page-cache");
    vm = json_object_get_object_member(o, "vm");
    g_assert_nonnull(vm);
    g_assert_cmpstr(json_object_get_string_member(vm, "machine"), ==,
                    "pc-q35-10.0");
    g_assert_cmpstr(json_object_get_string_member(vm, "qemu-version"), ==,
                    QEMU_VERSION);
    g_assert_true(g_str_has_prefix(json_object_get_string_member(vm, "seed"),
                                   "0x"));
    argv = json_object_get_array_member(vm, "arguments");
    g_assert_cmpuint(json_array_get_length(argv), >=, 1);
    g_assert_cmpstr(json_object_get_string_member(
        json_object_get_object_member(vm, "image-media"), "class"), ==,
        "page-cache");
    blocks = json_object_get_array_member(vm, "ram-blocks");
    g_assert_cmpuint(json_array_get_length(blocks), ==, 1);
    blk = json_array_get_object_element(blocks, 0);
    g_assert_cmpstr(json_object_get_string_member(blk, "name"), ==, "pc.ram");
    g_assert_cmpint(json_object_get_int_member(blk, "size"), ==, 1 << 20);
    g_assert_true(json_object_get_boolean_member(blk, "shared"));
    g_assert_cmpint(json_object_get_int_member(blk, "sampled-pages"), ==, 64);
    file = json_object_get_object_member(blk, "file");
    g_assert_cmpstr(json_object_get_string_member(file, "path"), ==, ram);
    g_assert_cmpint(json_object_get_int_member(file, "size"), ==, 1 << 20);
    g_assert_true(json_object_has_member(file, "inode"));
    g_assert_true(json_object_has_member(file, "modified"));
    g_assert_true(json_object_has_member(file, "created"));   /* ext4 */
    assert_no_negative(json_parser_get_root(parser), "(root)");
    /* Anonymous memory: no file. */
    save_vm(img, NULL);
    o = info_json(img, parser);
    blk = json_array_get_object_element(json_object_get_array_member(
        json_object_get_object_member(o, "vm"), "ram-blocks"), 0);
    g_assert_true(JSON_NODE_HOLDS_NULL(json_object_get_member(blk, "file")));
    g_assert_cmpstr(json_object_get_string_member(
        json_object_get_object_member(blk, "media"), "detail"), ==,
        "anonymous memory");
    assert_run("info", img, NULL, 0, "    file: none (anonymous memory)\n",
               NULL);
    g_object_unref(parser);
    g_free(ram);
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
    g_test_add_func("/tool/info-escapes", test_info_escapes);
    g_test_add_func("/tool/not-opened", test_not_opened);
    g_test_add_func("/tool/create", test_create);
    g_test_add_func("/tool/create-sizes", test_create_sizes);
    g_test_add_func("/tool/info-large-values", test_info_large_values);
    g_test_add_func("/tool/check-reboot", test_check_reboot);
    g_test_add_func("/tool/info-vm", test_info_vm);
    ret = g_test_run();
    remove_dir();
    g_free(dir);
    return ret;
}
