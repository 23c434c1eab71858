#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every invariant of the save path has a test that fails without it.

Removes the code that enforces each invariant of backend/writer.c (I1-I6,
C1-C7), one change at a time, in a copy of the committed tree (git archive
HEAD); rebuilds; runs the unit, crash, corrupt and tool suites; prints a
Markdown table of the tests that failed (tests/README.md holds the latest).
A change that no longer applies (the code moved) is reported, not skipped.

    tests/mutants.py [--jobs N] [--keep DIR] [NAME...]

About two minutes per change on two cores; NAME selects some.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SUITES = ["unit", "crash", "corrupt", "tool"]

# (name, invariant, what the change does, file, old text, new text); the
# old text must occur exactly once.
MUTANTS = [
    ("place-over-live", "I1", "the new payload placed as if nothing were live",
     "backend/writer.c",
     "w->place = cpr_place_new(w->live.payload_off, w->live.payload_len);",
     "w->place = cpr_place_new(0, 0);"),
    ("no-limit-below-live", "I1", "no limit below a high live payload",
     "backend/placement.c",
     "return (CprPlacement){ CPR_PAYLOAD_AREA, live_off - CPR_PAYLOAD_AREA,",
     "return (CprPlacement){ CPR_PAYLOAD_AREA, CPR_NO_LIMIT,"),
    ("publish-live-slot", "I2", "the record written into the live slot",
     "backend/writer.c",
     "    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));\n"
     "    uint8_t buf[CPR_REC_SIZE];",
     "    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen + 1));\n"
     "    uint8_t buf[CPR_REC_SIZE];"),
    ("payload-not-persisted", "I3", "no flush of the payload before the record",
     "backend/writer.c",
     "    if (cpr_persist_range(w->p, rec.payload_off, rec.payload_len,\n"
     "                          errp) < 0) {",
     "    if (0) {"),
    ("no-undo", "I4", "a failed record flush not undone",
     "backend/writer.c",
     "    undo_record(w, slot);\n",
     ""),
    ("no-settle-slot", "I4", "the next save does not settle the slot",
     "backend/writer.c",
     "    if (settle_slot(w, errp) < 0) {",
     "    if (0 && settle_slot(w, errp) < 0) {"),
    ("no-allocate-sparse", "I5", "holes of a sparse file not allocated",
     "backend/space.c",
     "    if (w->file.sparse && end > from && from < w->old_end) {",
     "    if (0) {"),
    ("no-grow", "I5", "the file not grown before a store",
     "backend/space.c",
     "    if (target) {\n        cpr_populator_stop(w->pop);",
     "    if (0) {\n        cpr_populator_stop(w->pop);"),
    ("no-fault-guard", "I5", "stores without the SIGBUS guard",
     "backend/persist.c",
     "    if (cpr_fault_guard_access(p->base, p->len, a) < 0) {",
     "    op(a);\n    if (0) {"),
    ("no-intact-check", "I6", "the commit's intact() check removed",
     "backend/writer.c",
     "    if (cpr_image_check_intact(&w->file, cpr_persist_size(w->p), "
     "errp) < 0) {",
     "    if (0) {"),
    ("intact-after-stores-only", "I6",
     "checked only after the commit's own stores",
     "backend/writer.c",
     "    if (intact(w, errp) < 0) {\n        return -1;\n    }\n"
     "    /* The payload completed",
     "    /* The payload completed"),
    ("slots-not-compared", "I6", "the record slots not compared",
     "backend/image-file.c",
     "    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {",
     "    for (unsigned i = 0; i < 0; i++) {"),
    ("grow-under-read-lock", "C1", "growth under the read lock",
     "backend/ledger.c",
     "        pthread_rwlock_unlock(&w->map);\n"
     "        pthread_rwlock_wrlock(&w->map);\n        if (end <= w->reach) {",
     "        pthread_rwlock_unlock(&w->map);\n"
     "        pthread_rwlock_rdlock(&w->map);\n        if (end <= w->reach) {"),
    ("partial-zeroes-others", "C2",
     "a partial store zeroes what other stores wrote",
     "backend/ledger.c",
     "    if ((prev == PG_FRESH || prev == PG_APPENDING) &&\n",
     "    if ((1) &&\n"),
    ("partial-keeps-stale-hash", "C2",
     "a partial store keeps a whole page's hash",
     "backend/ledger.c",
     "    /* Even after a failure: the save will not commit. */\n"
     "    unlock_page(w, pg, PG_MEDIA);",
     "    unlock_page(w, pg, prev == PG_HASHED ? PG_HASHED : PG_MEDIA);"),
    ("no-page-lock", "C2", "the page lock bit not taken",
     "backend/ledger.c",
     "        cur &= (uint8_t)~PG_LOCK;\n"
     "        if (atomic_compare_exchange_weak_explicit(",
     "        cur &= (uint8_t)~PG_LOCK;\n        return cur;\n"
     "        if (atomic_compare_exchange_weak_explicit("),
    ("gap-not-zeroed", "C3", "a page no store touched not zeroed",
     "backend/ledger-settle.c",
     "    case PG_FRESH:\n"
     "        if (cpr_persist_is_zero(w->p, off, n, &zero, errp) < 0 ||\n"
     "            (!zero && cpr_persist_zero(w->p, off, n, errp) < 0)) {",
     "    case PG_FRESH:\n"
     "        if (cpr_persist_is_zero(w->p, off, n, &zero, errp) < 0) {"),
    ("partial-page-rest-not-zeroed", "C3",
     "the rest of a partly written page not zeroed",
     "backend/ledger.c",
     "    if ((prev == PG_FRESH || prev == PG_APPENDING) &&\n",
     "    if ((0) &&\n"),
    ("last-store-sets-length", "C4", "the last store sets the length",
     "backend/ledger.c",
     "        cpr_atomic_max(&w->len, end);     /* C4 */",
     "        atomic_store(&w->len, end);     /* C4 */"),
    ("append-at-stream-end", "C4", "appends go to the stream's end",
     "backend/ledger.c",
     "    int64_t n = cpr_ledger_store(w, w->pos, iov, iovcnt, true, false,",
     "    int64_t n = cpr_ledger_store(w, stream_len(w), iov, iovcnt, true, "
     "false,"),
    ("last-failure-wins", "C5", "the last failure's message kept",
     "backend/first-failure.c",
     "    if (!f->msg && msg) {\n        f->msg = strdup(msg);",
     "    if (msg) {\n        free(f->msg);\n        f->msg = strdup(msg);"),
    ("failure-forgotten", "C5", "calls after a failure go on",
     "backend/writer.c",
     "    if (cpr_first_failure_failed(&w->failure)) {\n"
     "        cpr_first_failure_copy(&w->failure, errp);",
     "    if (0) {\n        cpr_first_failure_copy(&w->failure, errp);"),
    ("commit-under-read-lock", "C6", "commit under the read lock",
     "backend/writer.c",
     "    /* C6: no store runs; the lock makes their bytes and hashes ours. */\n"
     "    pthread_rwlock_wrlock(&w->map);",
     "    pthread_rwlock_rdlock(&w->map);"),
    ("store-after-commit", "C6", "stores accepted after commit or abort",
     "backend/writer.c",
     "    if (atomic_load(&w->finished)) {\n"
     "        cpr_image_error(&w->file, errp, \"save already committed or "
     "aborted\");",
     "    if (0) {\n"
     "        cpr_image_error(&w->file, errp, \"save already committed or "
     "aborted\");"),
    ("other-store-zeroes-appended", "C7",
     "a store into the frontier zeroes the appended bytes",
     "backend/ledger.c",
     "    if (prev == PG_APPENDING) {\n"
     "        done = from + w->carry_len;\n    }",
     ""),
    ("frontier-rest-not-zeroed", "C7",
     "the frontier page's rest not zeroed at commit",
     "backend/ledger-settle.c",
     "                (!zero && cpr_persist_zero(w->p, off, n, errp) < 0)) {\n"
     "                return -1;\n            }\n"
     "            XXH3_64bits_update(w->carry, zeros, n);",
     "                0) {\n                return -1;\n            }\n"
     "            XXH3_64bits_update(w->carry, zeros, n);"),
    ("exec-short-stream", "tool", "the exec: helper commits a short stream",
     "tools/cpr-pmem/exec-save.c",
     "        cpr_stream_end_check(&s.end, &why) == 0 &&\n",
     ""),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def failed_tests(build):
    """Names of the tests that did not pass in the last meson test run."""
    out = []
    with open(os.path.join(build, "meson-logs", "testlog.json")) as f:
        for line in f:
            t = json.loads(line)
            if t["result"] not in ("OK", "SKIP", "EXPECTEDFAIL"):
                name = t["name"].split(" / ", 1)[-1]
                out.append(name if t["result"] == "FAIL" else
                           "%s (%s)" % (name, t["result"].lower()))
    return out


def pairs(names):
    """"x-pmem" and "x-msync" both failed: "x"."""
    names = set(names)
    out = set()
    for n in names:
        base = n.rsplit("-", 1)[0]
        if n.endswith(("-pmem", "-msync")) and \
                {base + "-pmem", base + "-msync"} <= names:
            n = base
        out.add(n)
    return sorted(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", help="work in DIR and keep it")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    src = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = args.keep or tempfile.mkdtemp(prefix="cpr-mutants-")
    os.makedirs(tree, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", src, "archive", "HEAD"],
                               stdout=subprocess.PIPE)
    run(["tar", "-x", "-C", tree], stdin=archive.stdout)
    archive.wait()
    build = os.path.join(tree, "build")
    if not os.path.isdir(build):
        # Some changes leave a function or variable unused.
        run(["meson", "setup", build, tree, "-Dwerror=false"],
            stdout=subprocess.DEVNULL)
    print("| change | invariant | removed | failing tests |")
    print("|---|---|---|---|")
    for name, inv, what, path, old, new in MUTANTS:
        if args.names and name not in args.names:
            continue
        file = os.path.join(tree, path)
        with open(file) as f:
            text = f.read()
        if text.count(old) != 1:
            print("| %s | %s | %s | DOES NOT APPLY (%d matches) |" %
                  (name, inv, what, text.count(old)), flush=True)
            continue
        with open(file, "w") as f:
            f.write(text.replace(old, new))
        try:
            if subprocess.run(["meson", "compile", "-C", build],
                              stdout=subprocess.DEVNULL).returncode:
                result = "BUILD FAILED"
            else:
                cmd = ["meson", "test", "-C", build,
                       "--num-processes", str(args.jobs)]
                for s in SUITES:
                    cmd += ["--suite", s]
                subprocess.run(cmd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                result = ", ".join("`%s`" % n for n in
                                   pairs(failed_tests(build))) or "**NONE**"
        finally:
            with open(file, "w") as f:
                f.write(text)
        print("| %s | %s | %s | %s |" % (name, inv, what, result), flush=True)
    if not args.keep:
        shutil.rmtree(tree)
    return 0


if __name__ == "__main__":
    sys.exit(main())
