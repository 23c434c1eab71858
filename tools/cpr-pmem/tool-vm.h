/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The saved VM and media classes as cpr-pmem info shows them. */
#ifndef CPR_TOOL_VM_H
#define CPR_TOOL_VM_H

#include <json-glib/json-glib.h>
#include <stdint.h>

struct CprVmdesc;

void tool_print_media(const char *label, uint32_t media, const char *detail);
void tool_print_vm(const struct CprVmdesc *d);
void tool_add_media(JsonBuilder *b, const char *name, uint32_t media,
                    const char *detail);
void tool_add_vm(JsonBuilder *b, const struct CprVmdesc *d);

#endif
