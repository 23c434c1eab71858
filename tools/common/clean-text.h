/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Text read from a file or another process, made safe to show. */
#ifndef CPR_CLEAN_TEXT_H
#define CPR_CLEAN_TEXT_H

/*
 * tool_clean -- text from an image, safe on a terminal and in JSON: what
 * is not a printable character (ASCII controls, DEL, C1 controls such as
 * the 8-bit CSI, other non-printable code points, bytes that are not
 * UTF-8) is shown escaped, as \xNN or \u{N}.  NULL reads as "".
 * g_free() it.
 */
char *tool_clean(const char *s);

#endif
