/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The last exec: save attempt on an image: for wait and info. */
#ifndef CPR_LAST_SAVE_H
#define CPR_LAST_SAVE_H

#include "helper-status.h"

#include <json-glib/json-glib.h>
#include <stdbool.h>

/*
 * The outcome of the attempt @st (read from the image open as @fd)
 * describes: its state, or for a dead helper's "running" (@live false),
 * committed or failed, with st->message saying which.
 */
uint32_t last_save_outcome(int fd, CprHelperStatus *st, bool live);

/* For info: the last attempt, if one is recorded (nothing if none). */
void tool_print_exec_status(const char *path);
void tool_add_exec_status(JsonBuilder *b, const char *path);

#endif
