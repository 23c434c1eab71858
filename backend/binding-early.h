/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Restore: the binding check (cpr_binding_verify) on the room helper's
 * thread (room.h), beside the payload's verification on in_open's.  It
 * starts from the VM description as the file holds it before the
 * verification, and its verdict counts only for exactly the bytes the
 * verification then passed (else the check runs again on those, in the
 * caller).  Whatever happens, both are done before in_open returns, and
 * a payload that fails its verification is refused for that, as before.
 */
#ifndef CPR_BINDING_EARLY_H
#define CPR_BINDING_EARLY_H

#include "binding.h"
#include "image-file.h"
#include "reader.h"

typedef struct CprEarlyBinding CprEarlyBinding;

/*
 * Read @rec's VM description from @f and offer its check against @vm to
 * the helper.  @path, @host and @vm must stay valid until
 * cpr_binding_early_finish().  NULL (nothing started) for a record
 * without a description, a short read or no memory.
 */
CprEarlyBinding *cpr_binding_early_start(const char *path, const CprImage *f,
                                         const CprRecord *rec,
                                         const CprHost *host,
                                         const CprVm *vm);

/*
 * The check done (here, if the helper has not started it) and freed
 * (@e may be NULL).  @r NULL: the image was refused, the check is not
 * started here and its verdict is dropped; returns -1.  Else
 * cpr_binding_verify()'s result for @r's verified description, its
 * warnings given to @host now, in order.
 */
int cpr_binding_early_finish(CprEarlyBinding *e, const CprReader *r,
                             const char *path, const CprHost *host,
                             const CprVm *vm, char **errp);

/* Test hook: how many early checks another thread than the one that
 * started them has run to the end (decoded and checked). */
unsigned cpr_binding_early_helper_runs(void);

#endif
