/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared helpers for the unit tests.  File-based tests work in a fresh
 * directory under $CPR_TEST_DIR and check that the media kind is
 * $CPR_EXPECT_PMEM, so each run proves which persistence path it took.
 */
#ifndef UNIT_UTIL_H
#define UNIT_UTIL_H

#include <glib.h>
#include <stdint.h>

#include "qemu/transport-plugin.h"

#define TU_QEMU_VERSION "10.0.13-test"

/*
 * The transport, initialised as QEMU does, with host->warn recording
 * the warnings (tu_warned) and the command line the transport reads as
 * this process's fixed to TU_CMDLINE (so that saves and restores agree
 * whatever the test binary's own argv is: some re-execute themselves).
 */
const QemuTransportOps *tu_ops(void);

/* The default VM: no RAM blocks left in place, TU_MACHINE, TU_CPU. */
#define TU_MACHINE "pc-q35-10.0"
#define TU_CPU "qemu64"
const QemuTransportVm *tu_vm(void);

/* The command line of the tests' "QEMU", NULL-terminated. */
extern const char *const tu_cmdline[];
/* Make the transport see @argv (NULL-terminated) as this process's
 * command line; NULL: tu_cmdline again. */
void tu_set_cmdline(const char *const *argv);

/* Whether a warning containing @what was printed since the last
 * tu_clear_warnings(). */
gboolean tu_warned(const char *what);
/* How many warnings since the last clear. */
guint tu_nr_warnings(void);
void tu_clear_warnings(void);

/*
 * g_test_init(), with --keep-going: a failed case does not stop the
 * run, so every later case still runs and reports.
 */
void tu_test_init(int *argc, char ***argv);

/*
 * Add @fn as test @path, run in a process of its own (GLib's
 * g_test_trap_subprocess): it starts from main()'s state, whatever
 * earlier cases did, and a fatal assertion or a crash in it fails this
 * case alone, by name.  Its scratch directory lies inside the parent's,
 * so the parent removes it even after a crash.
 */
void tu_add_isolated(const char *path, GTestFunc fn);

/* Per-process scratch directory (mode 0755), removed at exit. */
const char *tu_dir(void);
/* g_free() the result. */
char *tu_path(const char *name);

/* Deterministic bytes that differ per @seed. */
uint8_t *tu_pattern(size_t len, uint32_t seed);

/* Save @len bytes in odd-sized iovecs; abort instead of committing after
 * @abort_at bytes unless it is (size_t)-1.  Asserts the media kind. */
void tu_save(const char *path, const uint8_t *buf, size_t len);
void tu_save_aborted(const char *path, const uint8_t *buf, size_t len,
                     size_t abort_at);

/* Stop the room-making a restore started (in_close), as QEMU's next
 * out_open would: a save outside the ABI would find the file locked. */
void tu_quiesce(void);

/* cpr_writer_open_vm() of tu_vm() after tu_quiesce(); asserts success.
 * Its cpr_writer_commit() records tu_vm() too (no RAM blocks). */
struct CprWriter *tu_writer_open(const char *path);

/* Assert the image loads and streams exactly @buf. */
void tu_assert_loads(const char *path, const uint8_t *buf, size_t len);

/* Assert out_open / in_open fail with a message starting "PATH: " and
 * containing @what. */
void tu_assert_save_refused(const char *path, const char *what);
void tu_assert_load_refused(const char *path, const char *what);

/* Generation and slot of the newest record, read back from the file. */
uint64_t tu_newest_generation(const char *path, int *slot);

/* Run @fn in a child process as user nobody; assert it succeeded. */
void tu_run_as_nobody(void (*fn)(const char *), const char *arg);

void tu_write_file(const char *path, const void *buf, size_t len);
void tu_flip_bit(const char *path, uint64_t off, int bit);

#endif
