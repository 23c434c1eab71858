/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The save path (FORMAT.md, "Save and commit protocol").
 *
 * Invariants, each enforced in one place:
 *
 *  I1  The new payload never overlaps the live one.  Its base and limit
 *      come only from cpr_place_new() (cpr_writer_open) and
 *      cpr_place_above() (relocate), and cpr_space_reserve() relocates
 *      before a
 *      stream crosses the limit.
 *  I2  Only the other slot is written: publish() writes slot gen % 2,
 *      with gen = live generation + 1 (open_live).
 *  I3  The payload is durable before the record: commit() calls
 *      publish() only once cpr_persist_range() of the payload
 *      returned 0.
 *  I4  A failed publish leaves the live record the one that loads:
 *      publish() stores the slot's old bytes back (undo_record, as LMDB
 *      undoes a failed meta page write), and the next save makes them
 *      durable before anything else (settle_slot).
 *  I5  No store lands outside the file or in a hole: cpr_space_reserve()
 *      grows and allocates (space.c, ensure_space) before anything is
 *      stored there, or, where pwrite() beats the mapping, grows only
 *      and every store into that growth (the bare zone) is a pwrite(),
 *      which allocates what it writes; the commit gives the rest blocks
 *      (cpr_space_settle).  If a third party truncates the file anyway,
 *      the persistence layer's fault guard turns the SIGBUS into an
 *      error, and a cut the bare zone's pwrite()s grew again is refused
 *      at commit.
 *  I6  A file truncated or rewritten behind the writer's back is not
 *      committed, nor written to by the commit: cpr_writer_commit()
 *      checks intact() (size, superblock, both record slots) before it
 *      stores the VM description and again before the record.
 *
 * Concurrency (QEMU's multifd threads call out_pwritev at once, on
 * disjoint ranges, and alongside out_writev; transport-plugin.h):
 *
 *  C1  The mapping, the placement and the page arrays change only under
 *      the write lock of w->map (reserve: growth, remap, relocation,
 *      allocation; open; commit), and every store runs under its read
 *      lock, inside the reach [0, w->reach) that cpr_space_reserve()
 *      prepared: a
 *      store never sees the mapping move, and growth waits for the
 *      stores in flight.  The populator's thread is stopped, and its
 *      cursor reset, only under the write lock.
 *  C2  Each stream page's checksum state (FORMAT.md, version 3) is owned
 *      by the store that covers all of it: it hashes its bytes as it
 *      stores them and publishes the hash with the page's state.  A
 *      store that covers part of a page takes the page's lock bit, so
 *      that stores sharing a page zero only bytes nobody wrote; such
 *      pages are hashed from the media at commit.
 *  C3  Gaps are zeroed at commit, not when the stream jumps over them:
 *      a page no store touched is checked and zeroed only if it is not
 *      zero already (mapped-ram leaves zero pages out, and a reused
 *      image mostly holds zeros there), so no store races a zero-fill.
 *  C4  The stream length is the largest end stored (atomic maximum); the
 *      append position belongs to out_writev, which QEMU never calls
 *      from two threads at once.
 *  C5  The first failure wins: it marks the save failed (atomically) and
 *      keeps its message, and every later call returns that message, so
 *      whichever thread QEMU hears from first names the real cause.
 *  C6  Commit, abort and close run when no store does (the ABI: QEMU
 *      joins its threads first); commit still takes the write lock, so
 *      it sees every store's bytes and page hashes.
 *  C7  The append frontier (the page that holds the append position,
 *      while only appends wrote it) is hashed as the appends fill it, by
 *      out_writev's thread alone (w->carry, under that page's lock bit):
 *      a stream of appends reads nothing back and zeroes nothing.  Any
 *      other store into that page first zeroes what the appends have not
 *      written, and makes it an ordinary partly written page.
 *
 * Everything read from the file is checked before it steers anything: a
 * live record whose payload is not in the file (or is sparse) protects
 * nothing and places nothing (open_live).
 *
 * The payload is the stream, then the VM description (FORMAT.md,
 * binding.h), collected at open and completed at commit, when
 * append_desc() stores it after the stream's last byte through the same
 * cpr_ledger_store() as the stream: I1, I3, I5 and C2 cover it
 * unchanged, and the record says where the stream ends.
 */
#include "writer-internal.h"
#include "binding.h"
#include "image-file.h"
#include "probes.h"
#include "reader.h"
#include "vmdesc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

/* C5: remember the first failure; hand its message to the caller, or
 * the first one if another thread failed before. */
void cpr_writer_fail(CprWriter *w, char *err, char **errp)
{
    cpr_first_failure_note(&w->failure, err);
    cpr_first_failure_copy(&w->failure, errp);
    free(err);
}

/* C5, for a failure already in *errp. */
static void note_failure(CprWriter *w, char **errp)
{
    cpr_first_failure_note(&w->failure, errp ? *errp : NULL);
}

/* The newest record is what the save must not disturb (I1, I2). */
static int open_live(CprWriter *w, char **errp)
{
    const CprSlots *s = &w->file.slots;
    const CprRecord *rec;
    char *why = NULL;

    w->gen = 1;
    w->slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));
    if (s->newest < 0) {
        return 0;
    }
    rec = &s->rec[s->newest];
    if (rec->generation >= CPR_MAX_GENERATION) {
        cpr_image_error(&w->file, errp, "generation counter exhausted");
        return -1;
    }
    w->gen = rec->generation + 1;
    w->slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));
    /* A payload that is not all there cannot load either; nor one whose
     * holes are not zeros. */
    if (cpr_image_payload_present(&w->file, rec, &why) &&
        cpr_reader_payload_verifies(&w->file, rec)) {
        w->live = *rec;
    }
    free(why);
    return 0;
}

/*
 * I4, continued: the slot this save will publish into must hold on the
 * media what it holds here.  After a failed commit whose undo could not
 * be flushed either, the media may still hold that save's record, whose
 * payload this save may overwrite: a crash before our record is durable
 * would then find a valid record over a torn payload.
 */
static int settle_slot(CprWriter *w, char **errp)
{
    uint64_t slot = w->slot;

    if (cpr_persist_store(w->p, slot, w->file.header + slot, CPR_REC_SIZE,
                          errp) < 0 ||
        cpr_persist_range(w->p, slot, CPR_REC_SIZE, errp) < 0) {
        return -1;
    }
    return 0;
}


CprWriter *cpr_writer_open_vm(const char *path, const CprHost *host,
                              const CprVm *vm, char **errp)
{
    CprWriter *w = calloc(1, sizeof(*w));
    pthread_rwlockattr_t attr;

    if (!w) {
        cpr_error(errp, path, "out of memory");
        return NULL;
    }
    w->file.fd = -1;
    /* Growth must not starve behind a stream of stores (C1). */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&w->map, &attr);
    pthread_rwlockattr_destroy(&attr);
    cpr_first_failure_init(&w->failure);
    w->carry_page = NO_PAGE;
    if (cpr_image_open_write(path, &w->file, errp) < 0) {
        goto fail;
    }
    cpr_metadata_collect(&w->md, host ? host->qemu_version : NULL);
    if (!(w->pop = cpr_populator_new()) ||
        !(w->carry = XXH3_createState()) ||
        (vm && vm->argv &&
         cpr_metadata_set_argv(&w->md, vm->argv, vm->argv_len) < 0)) {
        cpr_image_error(&w->file, errp, "out of memory");
        goto fail;
    }
    if (open_live(w, errp) < 0) {
        goto fail;
    }
    if (host) {
        w->host = *host;
    }
    w->ram_in_place = cpr_vm_nr_ram(vm) > 0;
    w->desc = cpr_binding_open(host, &w->md, vm, &w->file, errp);
    if (!w->desc) {
        goto fail;
    }
    /* The pages the commit samples: mapped in on the populator's thread,
     * which the commit, an abort and the close stop first. */
    cpr_populator_job(w->pop, cpr_binding_prefault_run,
                      cpr_binding_prefault_free,
                      cpr_binding_prefault_new(w->desc, vm));
    w->place = cpr_place_new(w->live.payload_off, w->live.payload_len);
    w->allocated = w->place.base;
    w->p = cpr_persist_map(&w->file, CPR_INITIAL_SIZE, errp);
    if (!w->p) {
        goto fail;
    }
    if (settle_slot(w, errp) < 0) {
        goto fail;
    }
    w->old_end = cpr_persist_size(w->p);
    cpr_populator_reset(w->pop, w->p, w->place.base);
    if (cpr_space_update(w, errp) < 0) {
        goto fail;
    }
    return w;
fail:
    cpr_writer_close(w);
    return NULL;
}

int cpr_writer_check_usable(CprWriter *w, char **errp)
{
    if (atomic_load(&w->finished)) {
        cpr_image_error(&w->file, errp, "save already committed or aborted");
        return -1;
    }
    if (cpr_first_failure_failed(&w->failure)) {
        cpr_first_failure_copy(&w->failure, errp);
        cpr_image_error(&w->file, errp, "an earlier write to this save failed");
        return -1;
    }
    return 0;
}

/* @rec as the record of this save, encoded into @buf; as a record of
 * the current version unless @rec names its own. */
static void encode_record(CprWriter *w, CprRecord *rec,
                          uint8_t buf[CPR_REC_SIZE])
{
    if (!rec->version) {
        rec->version = CPR_REC_VERSION;
    }
    rec->generation = w->gen;
    rec->ctime_ns = cpr_realtime_ns();
    memcpy(rec->qemu_version, w->md.qemu_version, sizeof(rec->qemu_version));
    memcpy(rec->kernel_release, w->md.kernel_release,
           sizeof(rec->kernel_release));
    rec->cmdline_fp = w->md.cmdline_fp;
    cpr_record_encode(rec, buf);
}

/*
 * I4: a record write or flush failed.  The record may sit in the page
 * cache, where a restore in this boot would find it: put the slot's old
 * bytes back, and make them durable if the media lets us (if not, it
 * holds one whole record or the other, each with a durable payload).
 */
static void undo_record(CprWriter *w, uint64_t slot)
{
    if (cpr_persist_store(w->p, slot, w->file.header + slot, CPR_REC_SIZE,
                          NULL) == 0) {
        cpr_persist_range(w->p, slot, CPR_REC_SIZE, NULL);
    }
}

/*
 * I2, I4: the record's steps, one a line: written into the slot the live
 * record does not use, persisted, published.  A failed write or flush is
 * undone at that step (undo_record), as LMDB undoes a failed meta page
 * write.
 */
static int publish(CprWriter *w, CprRecord *rec, char **errp)
{
    uint64_t slot = CPR_SLOT_OFFSET(cpr_slot_for(w->gen));
    uint8_t buf[CPR_REC_SIZE];

    encode_record(w, rec, buf);
    /* Record written (not yet durable); undone if the write fails. */
    if (cpr_persist_store(w->p, slot, buf, sizeof(buf), errp) < 0) {
        goto undo;
    }
    DTRACE_PROBE2(cpr_pmem, commit_record_written, w->gen,
                  cpr_slot_for(w->gen));
    /* Record persisted; undone if the flush fails. */
    if (cpr_persist_range(w->p, slot, sizeof(buf), errp) < 0) {
        goto undo;
    }
    DTRACE_PROBE2(cpr_pmem, commit_record_persisted, w->gen,
                  cpr_slot_for(w->gen));
    /* Published: this save is the live one. */
    atomic_store(&w->finished, true);
    DTRACE_PROBE1(cpr_pmem, commit_published, w->gen);
    return 0;
undo:
    undo_record(w, slot);
    note_failure(w, errp);
    return -1;
}

/*
 * The VM description goes right after the stream, like more stream: the
 * payload checksum covers it, and placement and growth treat it alike.
 * Write lock held.
 */
static int append_desc(CprWriter *w, const CprVm *vm, char **errp)
{
    struct iovec iov;
    size_t len = 0;
    uint8_t *buf;
    int64_t n;

    if (cpr_binding_commit(w->desc, &w->host, vm, &w->file, errp) < 0) {
        note_failure(w, errp);
        return -1;
    }
    buf = cpr_vmdesc_encode(w->desc, &len);
    if (!buf || len > CPR_VMDESC_MAX) {
        cpr_image_error(&w->file, errp, buf ? "VM description too large" :
                        "out of memory");
        free(buf);
        note_failure(w, errp);
        return -1;
    }
    iov = (struct iovec){ buf, len };
    /* After the last append, or after the last positional write. */
    n = cpr_ledger_store(w, STREAM_LEN(w), &iov, 1, STREAM_LEN(w) == w->pos,
                         true, errp);
    free(buf);
    return n < 0 ? -1 : 0;
}

/* I6.  Write lock held. */
static int intact(CprWriter *w, char **errp)
{
    if (cpr_image_check_intact(&w->file, cpr_persist_size(w->p), errp) < 0) {
        note_failure(w, errp);
        return -1;
    }
    return 0;
}

int cpr_writer_commit(CprWriter *w, char **errp)
{
    return cpr_writer_commit_vm(w, NULL, errp);
}

/*
 * The commit's steps, one a line (FORMAT.md, "Save and commit
 * protocol"), under the write lock: the payload completed, checksummed
 * and persisted, then publish()'s record steps.
 */
static int commit(CprWriter *w, const CprVm *vm, char **errp)
{
    CprRecord rec = { .stream_len = STREAM_LEN(w) };

    /* I6 before the commit stores a byte (the VM description, zeroed
     * gaps): not into a file another process rewrote. */
    if (intact(w, errp) < 0) {
        return -1;
    }
    /* The payload completed: the VM description after the stream. */
    if (append_desc(w, vm, errp) < 0) {
        return -1;
    }
    rec.payload_off = w->place.base;
    rec.payload_len = STREAM_LEN(w);
    /* Checksum: gaps zeroed, partly written pages hashed (C3). */
    if (cpr_ledger_checksum(w, rec.payload_len, &rec.payload_xxh3,
                            errp) < 0) {
        goto fail;
    }
    DTRACE_PROBE2(cpr_pmem, commit_checksum, w->gen, rec.payload_xxh3);
    /* I6 again: a change while hashing. */
    if (intact(w, errp) < 0) {
        goto fail;
    }
    /* Payload persisted, before the record (I3). */
    if (cpr_persist_range(w->p, rec.payload_off, rec.payload_len,
                          errp) < 0) {
        goto fail;
    }
    DTRACE_PROBE2(cpr_pmem, commit_payload_persisted, w->gen, rec.payload_len);
    return publish(w, &rec, errp);
fail:
    note_failure(w, errp);
    return -1;
}

int cpr_writer_commit_vm(CprWriter *w, const CprVm *vm, char **errp)
{
    int ret;

    if (cpr_writer_check_usable(w, errp) < 0) {
        return -1;
    }
    /* C6: no store runs; the lock makes their bytes and hashes ours. */
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    ret = commit(w, vm, errp);
    pthread_rwlock_unlock(&w->map);
    if (ret == 0) {
        /*
         * The save is over: let a reader in now rather than after QEMU's
         * cleanup unmaps what may be gigabytes.  This writer stores
         * nothing more.
         */
        flock(w->file.fd, LOCK_UN);
    }
    return ret;
}

int cpr_writer_invalidate(CprWriter *w, char **errp)
{
    /* The old payload stays described, so the next save still avoids it
     * and an inspector can see what was invalidated; its version says
     * how its checksum was taken. */
    CprRecord rec = {
        .version = w->live.version,
        .flags = CPR_REC_FLAG_INVALIDATED,
        .payload_off = w->live.payload_off,
        .payload_len = w->live.payload_len,
        .payload_xxh3 = w->live.payload_xxh3,
        .stream_len = w->live.stream_len,
    };

    int ret = -1;

    if (cpr_writer_check_usable(w, errp) < 0) {
        return -1;
    }
    /* As a commit does (C6, I6), though no store runs here. */
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    if (intact(w, errp) == 0) {
        ret = publish(w, &rec, errp);
    }
    pthread_rwlock_unlock(&w->map);
    return ret;
}

void cpr_writer_abort(CprWriter *w)
{
    pthread_rwlock_wrlock(&w->map);
    cpr_populator_stop(w->pop);
    cpr_space_release(w);
    atomic_store(&w->finished, true);
    pthread_rwlock_unlock(&w->map);
}

void cpr_writer_close(CprWriter *w)
{
    if (!w) {
        return;
    }
    cpr_populator_free(w->pop);
    cpr_persist_unmap(w->p);
    cpr_image_close(&w->file);
    cpr_vmdesc_free(w->desc);
    cpr_metadata_free(&w->md);
    free((void *)w->pstate);
    free(w->phash);
    XXH3_freeState(w->carry);
    cpr_first_failure_destroy(&w->failure);
    pthread_rwlock_destroy(&w->map);
    free(w);
}

bool cpr_writer_is_pmem(const CprWriter *w)
{
    return cpr_persist_is_pmem(w->p);
}

uint64_t cpr_writer_generation(const CprWriter *w)
{
    return w->gen;
}

uint64_t cpr_writer_payload_offset(const CprWriter *w)
{
    return w->place.base;
}

const char *cpr_writer_path(const CprWriter *w)
{
    return cpr_image_path(&w->file);
}

int cpr_writer_reopen_rw(const CprWriter *w)
{
    return cpr_image_reopen_rw(&w->file);
}
