/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Turning a SIGBUS from the image mapping into an error.
 *
 * A store into a shared file mapping faults with SIGBUS when its page is
 * gone: another process truncated the file, or punched a hole that the
 * filesystem cannot fill (tmpfs full).  In QEMU that kills the running VM
 * the save was meant to protect.  The writer allocates every range before
 * it stores there, but nothing stops a third party from truncating the
 * file afterwards; so every access to the mapping runs under this guard,
 * as QEMU's own qemu_prealloc_mem() does for its page touching.
 *
 * The handler is process-wide and chains to whatever handler was there
 * before (QEMU's machine-check handling, or the default action), so a
 * SIGBUS outside a guarded range behaves exactly as without us.  QEMU
 * blocks SIGBUS in the threads it creates, and a synchronous SIGBUS that
 * is blocked kills the process without calling any handler: the first
 * guarded access on a thread therefore unblocks SIGBUS there, for good
 * (the handler chains, so QEMU's handling is unchanged).
 */
#ifndef CPR_FAULT_GUARD_H
#define CPR_FAULT_GUARD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Run fn(opaque).  Returns 0 when it returned, -1 when it touched a page
 * of [lo, lo + len) that raised SIGBUS (fn was cut short there).  Not
 * reentrant on one thread; any number of threads may be inside at once.
 */
int cpr_fault_guard(const void *lo, size_t len, void (*fn)(void *opaque),
                    void *opaque);

/*
 * One access to a mapping (the writer's, persist.c, or the reader's,
 * reader-verify.c), as cpr_fault_guard_access() runs it: @op works on
 * @len bytes at @src and/or @dst and leaves what it found in @result;
 * @ctx and @arg are the caller's, for its own ops.
 */
typedef struct CprAccess {
    void (*op)(struct CprAccess *a);
    void *(*copy)(void *dst, const void *src, size_t len);  /* or NULL */
    uint8_t *dst;
    const uint8_t *src;
    size_t len;
    const void *ctx;
    uint64_t arg, result;
} CprAccess;

/* Run @a under the guard of the mapping [@lo, @lo + @span): 0, or -1
 * when it touched a page there that raised SIGBUS. */
int cpr_fault_guard_access(const void *lo, size_t span, CprAccess *a);

/* The op both mappings use: @dst = @src, with @copy (memcpy if NULL). */
void cpr_access_copy(CprAccess *a);

#endif
