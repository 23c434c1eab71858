/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The files cpr-host-update (run by root) writes, reads, renames and
 * removes, opened as docs/threat-model.md requires: each under a
 * descriptor of its directory, never through a symlink in the last
 * component, its type checked on the descriptor before any write, new
 * files O_EXCL and 0600.
 */
#ifndef CPR_HOST_FILES_H
#define CPR_HOST_FILES_H

#include <glib.h>
#include <sys/types.h>

/* The largest manifest restore reads (a host's VMs, their environments). */
#define HOST_MANIFEST_MAX (16u << 20)

/*
 * Replace @path with @text durably: a new 0600 file of a unique name
 * (O_EXCL) in @path's directory, fsync, renameat over @path, fsync of
 * the directory.  A symlink at @path is replaced, never followed.
 */
gboolean host_write_durably(const char *path, const char *text,
                            GError **errp);

/*
 * The contents of the manifest @path, at most HOST_MANIFEST_MAX bytes,
 * if whoever may replace it is trusted: a regular file (not a symlink)
 * owned by this user and writable by nobody else, in a directory
 * that nobody else can write (or that is sticky).
 */
char *host_read_trusted(const char *path, gsize *len, GError **errp);

/*
 * Whether @path's directory is one whose names only this user or root
 * can change (what restore requires of the manifest's); *@errp if not.
 */
gboolean host_dir_trusted(const char *path, GError **errp);

/* Rename @path to @to (same directory), without following either. */
gboolean host_rename(const char *path, const char *to, GError **errp);

/*
 * Remove @path if it is (not a symlink to) a file of @type (S_IFREG,
 * S_IFSOCK); 0, or -1 with errno (ENOENT: nothing there; EPERM: another
 * type).
 */
int host_unlink_type(const char *path, mode_t type);

/*
 * Open the log @path for appending (created 0600 if missing), or
 * /dev/null if @path is NULL, a symlink or not a regular file.
 */
int host_open_log(const char *path);

#endif
