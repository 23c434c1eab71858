/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The files cpr-host-update (run by root) writes and trusts, without
 * QEMU: a restore whose VM cannot start rewrites the manifest, which
 * holds the VMs' environments, so it must never write through a symlink
 * planted where its temporary file used to be, and it must stay 0600;
 * a manifest that someone else could have written is never acted upon;
 * the failed restore's table shows no duration from an unset time.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MANIFEST_NAME "cpr-host-update.json"
#define VICTIM_TEXT "root-owned file: must keep these bytes\n"

static char *dir;

/* A fresh directory (0700) under the test's one. */
static char *subdir(const char *name)
{
    char *d = g_build_filename(dir, name, NULL);

    g_assert_cmpint(g_mkdir(d, 0700), ==, 0);
    return d;
}

/*
 * A manifest for one VM whose "QEMU" is @argv (it exits at once: the
 * restore fails), with a secret in its environment.
 */
static char *write_manifest(const char *d, const char *const *argv)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *qmp = g_build_filename(d, "vm0.qmp", NULL);
    g_autofree char *img = g_build_filename(d, "vm0.cpr", NULL);
    g_autofree char *uri = g_strconcat("pmem:", img, NULL);
    g_autofree char *text = NULL;
    char *path = g_build_filename(d, MANIFEST_NAME, NULL);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, "cpr-host-update-manifest");
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, 1);
    json_builder_set_member_name(b, "boot-id-before");
    json_builder_add_string_value(b, "not-this-boot");
    json_builder_set_member_name(b, "reboot-at-us");
    json_builder_add_double_value(b, 1e15);
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, "vm0");
    json_builder_set_member_name(b, "qmp");
    json_builder_add_string_value(b, qmp);
    json_builder_set_member_name(b, "image");
    json_builder_add_string_value(b, img);
    json_builder_set_member_name(b, "uri");
    json_builder_add_string_value(b, uri);
    json_builder_set_member_name(b, "argv");
    json_builder_begin_array(b);
    for (int i = 0; argv[i]; i++) {
        json_builder_add_string_value(b, argv[i]);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "env");
    json_builder_begin_array(b);
    json_builder_add_string_value(b, "SECRET=hunter2");
    json_builder_end_array(b);
    json_builder_set_member_name(b, "cwd");
    json_builder_add_string_value(b, d);
    json_builder_end_object(b);
    json_builder_end_array(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_cmpint(chmod(path, 0600), ==, 0);
    return path;
}

/* restore --manifest=@manifest; its exit status, stdout and stderr. */
static int restore(const char *manifest, char **out, char **err_text)
{
    g_autofree char *opt = g_strconcat("--manifest=", manifest, NULL);
    const char *argv[] = { CPR_HOST_UPDATE, "restore", opt, "--timeout=10",
                           NULL };
    GError *err = NULL;
    int status;

    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out,
                 err_text, &status, &err);
    g_assert_no_error(err);
    g_test_message("cpr-host-update restore:\n%s%s", *out, *err_text);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static char *victim_in(const char *d)
{
    char *v = g_build_filename(d, "victim", NULL);

    g_assert_true(g_file_set_contents(v, VICTIM_TEXT, -1, NULL));
    g_assert_cmpint(chmod(v, 0644), ==, 0);
    return v;
}

static void assert_victim(const char *v)
{
    g_autofree char *text = NULL;
    struct stat st;

    g_assert_true(g_file_get_contents(v, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, VICTIM_TEXT);
    g_assert_cmpint(stat(v, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0644);
}

/*
 * A failed restore rewrites the manifest (keeping the VM not restored):
 * symlinks to a victim at the old temporary name and at other names one
 * could guess leave it untouched; the manifest is a regular 0600 file
 * with the VM still in it; no temporary file is left; the table prints
 * "-" for what never happened, never a negative duration.
 */
static void test_failed_restore(void)
{
    g_autofree char *d = subdir("failed");
    g_autofree char *victim = victim_in(d);
    const char *argv[] = { "/bin/false", "-name", "vm0", NULL };
    g_autofree char *manifest = write_manifest(d, argv);
    const char *guesses[] = { MANIFEST_NAME ".tmp", "." MANIFEST_NAME ".tmp",
                              MANIFEST_NAME "~", "." MANIFEST_NAME ".swp",
                              NULL };
    g_autofree char *out = NULL, *err_text = NULL, *text = NULL;
    g_autoptr(GRegex) negative = g_regex_new("-[0-9]", 0, 0, NULL);
    g_autoptr(GDir) listing = NULL;
    const char *name;
    struct stat st;
    guint entries = 0;

    for (int i = 0; guesses[i]; i++) {
        g_autofree char *link = g_build_filename(d, guesses[i], NULL);

        g_assert_cmpint(symlink(victim, link), ==, 0);
    }
    g_assert_cmpint(restore(manifest, &out, &err_text), ==, 1);
    g_assert_nonnull(strstr(err_text, "vm0: not restored"));
    assert_victim(victim);
    g_assert_cmpint(lstat(manifest, &st), ==, 0);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_true(g_file_get_contents(manifest, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "SECRET=hunter2"));
    /* the manifest, the victim, the planted links: nothing else */
    listing = g_dir_open(d, 0, NULL);
    while ((name = g_dir_read_name(listing))) {
        entries++;
    }
    g_assert_cmpuint(entries, ==, 2 + G_N_ELEMENTS(guesses) - 1);
    g_assert_nonnull(strstr(out, "first QEMU start to last VM running - ms"));
    g_assert_false(g_regex_match(negative, out, 0, NULL));
}

/*
 * A manifest that another user could have written (mode 0666, or in a
 * directory anyone can write), or a symlink, is refused: what it says
 * to run does not run.
 */
static void test_untrusted_manifest(void)
{
    g_autofree char *d = subdir("untrusted");
    g_autofree char *mark = g_build_filename(d, "ran", NULL);
    g_autofree char *cmd = g_strdup_printf("touch %s", mark);
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    g_autofree char *manifest = write_manifest(d, argv);
    g_autofree char *elsewhere = g_build_filename(dir, "elsewhere.json", NULL);
    g_autofree char *out = NULL, *err_text = NULL;

    g_assert_cmpint(chmod(manifest, 0666), ==, 0);
    g_assert_cmpint(restore(manifest, &out, &err_text), ==, 1);
    g_assert_nonnull(strstr(err_text, "refusing to run what it says"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err_text, g_free);

    g_assert_cmpint(chmod(manifest, 0600), ==, 0);
    g_assert_cmpint(chmod(d, 0777), ==, 0);
    g_assert_cmpint(restore(manifest, &out, &err_text), ==, 1);
    g_assert_nonnull(strstr(err_text, "lets others replace it"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err_text, g_free);
    g_assert_cmpint(chmod(d, 0700), ==, 0);

    g_assert_cmpint(rename(manifest, elsewhere), ==, 0);
    g_assert_cmpint(symlink(elsewhere, manifest), ==, 0);
    g_assert_cmpint(restore(manifest, &out, &err_text), ==, 1);
    g_assert_nonnull(strstr(err_text, "is a symlink"));
    g_assert_false(g_file_test(mark, G_FILE_TEST_EXISTS));
}

/*
 * save refuses, before it touches any VM, a manifest directory that
 * restore would refuse after the reboot.
 */
static void test_save_untrusted_dir(void)
{
    g_autofree char *d = subdir("open-dir");
    g_autofree char *opt = g_strdup_printf("--manifest=%s/%s", d,
                                           MANIFEST_NAME);
    g_autofree char *vm = g_strdup_printf("%s/vm0.qmp=%s/vm0.cpr", d, d);
    const char *argv[] = { CPR_HOST_UPDATE, "save", opt, "--reboot-cmd=true",
                           vm, NULL };
    g_autofree char *out = NULL, *err_text = NULL;
    GError *err = NULL;
    int status;

    g_assert_cmpint(chmod(d, 0777), ==, 0);
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                 &out, &err_text, &status, &err);
    g_assert_no_error(err);
    g_test_message("cpr-host-update save:\n%s%s", out, err_text);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_assert_nonnull(strstr(err_text, "lets others replace it"));
    g_assert_nonnull(strstr(err_text, "no VM was touched"));
    g_assert_cmpint(chmod(d, 0700), ==, 0);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    umask(022);
    dir = g_dir_make_tmp("host-update-files-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_test_add_func("/host-update-files/failed-restore", test_failed_restore);
    g_test_add_func("/host-update-files/untrusted-manifest",
                    test_untrusted_manifest);
    g_test_add_func("/host-update-files/save-untrusted-dir",
                    test_save_untrusted_dir);
    ret = g_test_run();
    if (ret == 0) {
        g_autofree char *cmd = g_strdup_printf("rm -rf %s", dir);

        g_spawn_command_line_sync(cmd, NULL, NULL, NULL, NULL);
    }
    return ret;
}
