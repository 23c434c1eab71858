/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * USDT probes of transport-pmem.so (provider "cpr_pmem"), for an operator
 * who must see what the transport did inside a slow or failed save or
 * restore.  QEMU's own trace events stop at the hook; these go on from
 * there.  docs/tracing.md shows how to attach bpftrace or perf.
 *
 * A probe not traced costs one nop (a uprobe is placed on it only while
 * a tracer is attached), so probes sit on the stream's per-call path too.
 *
 * The call sites use <sys/sdt.h>'s DTRACE_PROBEn(cpr_pmem, NAME, ...)
 * themselves.  Every ABI call has an _entry and a _return probe; the
 * _return probe's last argument is what the call returns (-1 on error;
 * for out_open and in_open the writer or reader, 0 on error).  A save's
 * commit fires its steps in this order, each after the step succeeded:
 *   commit_checksum           the payload's checksum       (gen, xxh3)
 *   commit_payload_persisted  the payload is durable      (gen, bytes)
 *   commit_record_written     the record is stored         (gen, slot)
 *   commit_record_persisted   the record is durable        (gen, slot)
 *   commit_published          the save is the live image   (gen)
 * An invalidation (no stream) fires only the last three.
 *
 * Keep this list, docs/tracing.md and tests/unit/test-probes.c in step.
 */
#ifndef CPR_PROBES_H
#define CPR_PROBES_H

#include <sys/sdt.h>

#endif
