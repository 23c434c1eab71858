/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating images (issue 8, item 6): a creation killed at any moment
 * leaves no temporary file, any valid file name works, and a symlink at
 * the path (planted before or during the save) never makes a save
 * create, initialise or grow a file that is not an image.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "binding.h"
#include "hostile-util.h"
#include "unit-util.h"
#include "writer.h"

/* Names in @dir, sorted; g_strfreev() the result. */
static char **list_dir(const char *dir)
{
    GPtrArray *names = g_ptr_array_new();
    DIR *d = opendir(dir);
    struct dirent *e;

    g_assert_nonnull(d);
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            g_ptr_array_add(names, g_strdup(e->d_name));
        }
    }
    closedir(d);
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

static int run_tool(const char *cmd, const char *path)
{
    char *line = g_strdup_printf("'%s' %s '%s' >/dev/null 2>&1",
                                 CPR_PMEM_TOOL, cmd, path);
    int status = system(line);

    g_free(line);
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Create new images forever: out_open on a new name, out_close, unlink. */
static G_GNUC_NORETURN void creator(const char *dir)
{
    const QemuTransportOps *ops = tu_ops();

    for (unsigned i = 0;; i++) {
        char *path = g_strdup_printf("%s/img-%d-%u", dir, (int)getpid(), i);
        char *err = NULL;
        QemuTransportOut *t = ops->out_open(path, tu_vm(), &err);

        if (t) {
            ops->out_close(t);
        }
        free(err);
        unlink(path);
        g_free(path);
    }
}

/*
 * Kill creators (SIGKILL) at random moments, dozens of times: the
 * directory then holds only complete images (a valid superblock, which
 * "cpr-pmem info" reads: exit 0 or 1), never a temporary file.  The old
 * writer left PATH.XXXXXX behind.
 */
static void test_killed_creation(void)
{
    char *dir = tu_path("killed");
    char **names;
    int leftovers = 0;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    tu_quiesce();
    for (int k = 0; k < 40; k++) {
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            creator(dir);
        }
        g_usleep((gulong)g_test_rand_int_range(500, 25000));
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }
    names = list_dir(dir);
    for (char **n = names; *n; n++) {
        char *path = g_build_filename(dir, *n, NULL);
        int pid;
        unsigned i;
        char end;

        if (sscanf(*n, "img-%d-%u%c", &pid, &i, &end) != 2) {
            g_error("%s: left behind by a killed creation", path);
        }
        if (!hu_superblock_valid(path)) {
            g_error("%s: an incomplete image at the final path", path);
        }
        g_assert_cmpint(run_tool("info", path), <=, 1);
        leftovers++;
        g_free(path);
    }
    g_test_message("%d complete images left by 40 killed creators",
                   leftovers);
    g_strfreev(names);
    g_free(dir);
}

/*
 * A name of 250 (and 255, NAME_MAX) bytes is valid: the old writer
 * failed with "File name too long" because of its ".XXXXXX" suffix.
 */
static void check_long_name(size_t len)
{
    char *sub = g_strdup_printf("long-%zu", len);
    char *dir = tu_path(sub);
    char *name = g_strnfill(len, 'n');
    char *path;
    uint8_t *a = tu_pattern(3000, (uint32_t)len);
    QemuTransportOut *t;
    char *err = NULL;
    char **names;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    memcpy(name + len - 4, ".cpr", 4);
    path = g_build_filename(dir, name, NULL);
    t = tu_ops()->out_open(path, tu_vm(), &err);
    if (!t) {
        g_error("%s", err);
    }
    tu_ops()->out_close(t);
    tu_save(path, a, 3000);
    tu_assert_loads(path, a, 3000);
    tu_quiesce();
    names = list_dir(dir);
    g_assert_cmpstr(names[0], ==, name);
    g_assert_null(names[1]);
    g_strfreev(names);
    g_free(a);
    g_free(path);
    g_free(name);
    g_free(dir);
    g_free(sub);
}

static void test_long_name(void)
{
    check_long_name(250);
    check_long_name(255);
}

/* (a) A symlink to an empty regular file: refused, the file untouched. */
static void test_symlink_to_empty_file(void)
{
    char *target = tu_path("empty-target");
    char *path = tu_path("link-to-empty");

    tu_write_file(target, "", 0);
    g_assert_cmpint(symlink(target, path), ==, 0);
    tu_assert_save_refused(path, "symlink");
    g_assert_cmpuint(hu_file_size(target), ==, 0);
    g_free(path);
    g_free(target);
}

/* (b) A dangling symlink: refused, nothing created at the target or
 * beside the link. */
static void test_dangling_symlink(void)
{
    char *sub = tu_path("dangling");
    char *target = g_build_filename(sub, "missing-target", NULL);
    char *path = g_build_filename(sub, "link", NULL);
    char **names;

    g_assert_cmpint(mkdir(sub, 0755), ==, 0);
    g_assert_cmpint(symlink(target, path), ==, 0);
    tu_assert_save_refused(path, "symlink");
    g_assert_false(g_file_test(target, G_FILE_TEST_EXISTS));
    names = list_dir(sub);
    g_assert_cmpstr(names[0], ==, "link");
    g_assert_null(names[1]);
    g_strfreev(names);
    g_free(path);
    g_free(target);
    g_free(sub);
}

/* (c) A symlink to a valid image: the save goes into the image. */
static void test_symlink_to_image(void)
{
    char *target = tu_path("image-target");
    char *path = tu_path("link-to-image");
    uint8_t *a = tu_pattern(5000, 31), *b = tu_pattern(7000, 32);
    struct stat st;
    int slot;

    tu_save(target, a, 5000);
    g_assert_cmpint(symlink(target, path), ==, 0);
    tu_save(path, b, 7000);
    g_assert_cmpint(lstat(path, &st), ==, 0);
    g_assert_true(S_ISLNK(st.st_mode));
    g_assert_cmpuint(tu_newest_generation(target, &slot), ==, 2);
    tu_assert_loads(target, b, 7000);
    tu_quiesce();
    g_free(a);
    g_free(b);
    g_free(path);
    g_free(target);
}

typedef struct Planter {
    const char *target, *path;
    atomic_bool stop;
    unsigned planted;
} Planter;

/* Plant a symlink to the empty file at the path, and take it away. */
static void *planter(void *opaque)
{
    Planter *p = opaque;

    while (!atomic_load(&p->stop)) {
        if (symlink(p->target, p->path) == 0) {
            p->planted++;
            g_usleep(g_random_int_range(0, 300));
            g_assert_cmpint(unlink(p->path), ==, 0);
        }
        g_usleep(g_random_int_range(0, 300));
    }
    return NULL;
}

/*
 * A symlink planted while saves run (some of them creating the image):
 * whatever the timing, the empty target is never initialised.
 */
static void test_symlink_race(void)
{
    const QemuTransportOps *ops = tu_ops();
    char *target = tu_path("race-target");
    char *path = tu_path("race-path");
    Planter p = { target, path, false, 0 };
    uint8_t *a = tu_pattern(100, 33);
    struct iovec iov = { a, 100 };
    int saved = 0, refused = 0, via_symlink = 0, rounds = 0;
    pthread_t thread;
    double t0 = hu_now();

    tu_write_file(target, "", 0);
    g_assert_cmpint(pthread_create(&thread, NULL, planter, &p), ==, 0);
    while (rounds < 400 && (hu_now() - t0 < 2.0 || via_symlink == 0) &&
           hu_now() - t0 < 20.0) {
        char *err = NULL;
        QemuTransportOut *t = ops->out_open(path, tu_vm(), &err);
        struct stat st;

        rounds++;
        if (t) {
            g_assert_cmpint(ops->out_writev(t, &iov, 1, &err), ==, 100);
            g_assert_cmpint(ops->out_commit(t, tu_vm(), &err), ==, 0);
            ops->out_close(t);
            if (hu_file_size(target) != 0) {
                g_error("%s: the empty file behind a planted symlink was "
                        "initialised (round %d)", target, rounds);
            }
            /* Saved into a file it created: the planter cannot replace
             * that, so the path is that regular file. */
            g_assert_cmpint(lstat(path, &st), ==, 0);
            g_assert_true(S_ISREG(st.st_mode));
            g_assert_cmpint(unlink(path), ==, 0);
            saved++;
        } else {
            if (strstr(err, "symlink")) {
                via_symlink++;
            }
            free(err);
            refused++;
        }
        g_assert_cmpuint(hu_file_size(target), ==, 0);
    }
    atomic_store(&p.stop, true);
    pthread_join(thread, NULL);
    g_test_message("%d rounds: %d saves, %d refusals (%d naming the "
                   "symlink), %u symlinks planted", rounds, saved, refused,
                   via_symlink, p.planted);
    g_assert_cmpuint(hu_file_size(target), ==, 0);
    g_assert_cmpint(saved + refused, ==, rounds);
    unlink(path);
    g_free(a);
    g_free(path);
    g_free(target);
}

/*
 * Without O_TMPFILE, a creation killed mid-way leaves .cpr-pmem-XXXXXX
 * (planted here as it would be): the next creation in that directory
 * removes it, and nothing else: not a live creator's (locked), not a
 * symlink of that name (nor its target), not a directory, not a file of
 * another user, not a name outside the pattern.
 */
static void test_stale_temporaries(void)
{
    g_autofree char *dir = tu_path("stale");
    g_autofree char *victim = tu_path("stale-victim");
    const char *const kept[] = {
        ".cpr-pmem-Live01", ".cpr-pmem-Sym001", ".cpr-pmem-Dir001",
        ".cpr-pmem-Other1", ".cpr-pmem-toolong7", ".cpr-pmem-ab",
        ".cpr-pmem-Ab_12C", "img",
    };
    const bool root = geteuid() == 0;
    g_autofree char *img = NULL;
    char **names, *err = NULL, *p;
    CprWriter *w;
    int live;

    g_assert_cmpint(mkdir(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(victim, "victim", -1, NULL));
#define AT(name) (g_free(p), p = g_build_filename(dir, name, NULL))
    p = NULL;
    g_assert_true(g_file_set_contents(AT(".cpr-pmem-Ab12Cd"), "stale", -1,
                                      NULL));
    g_assert_true(g_file_set_contents(AT(".cpr-pmem-Live01"), "live", -1,
                                      NULL));
    live = open(p, O_RDONLY);
    g_assert_cmpint(flock(live, LOCK_EX), ==, 0);
    g_assert_cmpint(symlink(victim, AT(".cpr-pmem-Sym001")), ==, 0);
    g_assert_cmpint(mkdir(AT(".cpr-pmem-Dir001"), 0700), ==, 0);
    g_assert_true(g_file_set_contents(AT(".cpr-pmem-Other1"), "other", -1,
                                      NULL));
    if (root) {
        g_assert_cmpint(chown(p, 65534, 65534), ==, 0);
    }
    for (int i = 4; i < 7; i++) {
        g_assert_true(g_file_set_contents(AT(kept[i]), "x", -1, NULL));
    }
#undef AT
    g_free(p);

    img = g_build_filename(dir, "img", NULL);
    w = cpr_writer_open_vm(img, &(CprHost){ "test", NULL, NULL }, NULL, &err);
    g_assert_null(err);
    cpr_writer_close(w);
    close(live);

    names = list_dir(dir);
    for (size_t i = 0; i < G_N_ELEMENTS(kept); i++) {
        if (!root && !strcmp(kept[i], ".cpr-pmem-Other1")) {
            continue;       /* ours then: removed */
        }
        g_assert_true(g_strv_contains((const char *const *)names, kept[i]));
    }
    g_assert_false(g_strv_contains((const char *const *)names,
                                   ".cpr-pmem-Ab12Cd"));
    g_assert_cmpuint(g_strv_length(names), ==,
                     G_N_ELEMENTS(kept) - (root ? 0 : 1));
    g_strfreev(names);
    g_assert_true(g_file_get_contents(victim, &p, NULL, NULL));
    g_assert_cmpstr(p, ==, "victim");
    g_free(p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/create/killed-creation", test_killed_creation);
    g_test_add_func("/create/long-name", test_long_name);
    g_test_add_func("/create/symlink-to-empty-file",
                    test_symlink_to_empty_file);
    g_test_add_func("/create/dangling-symlink", test_dangling_symlink);
    g_test_add_func("/create/symlink-to-image", test_symlink_to_image);
    g_test_add_func("/create/symlink-race", test_symlink_race);
    g_test_add_func("/create/stale-temporaries", test_stale_temporaries);
    return g_test_run();
}
