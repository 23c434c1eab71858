/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem load: the exec: helper of an incoming migration
 * (migrate_incoming "exec:cpr-pmem load IMAGE"): the whole image
 * verified, and bound to the QEMU that runs it, before its stream goes
 * to stdout; of a refused image QEMU gets nothing it could load.
 */
#include "exec.h"
#include "tool.h"
#include "binding.h"
#include "helper-status.h"
#include "parent-vm.h"
#include "reader.h"
#include "stream-config.h"
#include "vmdesc.h"
#include "write-all.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * QEMU's exec: incoming channel starts reading only once its pipe is
 * readable, and a bare EOF never makes it so: it would wait in "setup"
 * for ever.  So a refusal sends QEMU four zero bytes, which no image
 * holds (a stream starts with "QEVM"): QEMU fails at once, "Not a
 * migration stream", and the reason is in its log from us.  Only to a
 * pipe or socket, not into a file someone redirected stdout to.
 */
static void fail_qemu(void)
{
    static const uint8_t not_a_stream[4];
    struct stat st;

    if (fstat(STDOUT_FILENO, &st) == 0 &&
        (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        if (write(STDOUT_FILENO, not_a_stream, sizeof(not_a_stream)) < 0) {
            /* QEMU is gone already. */
        }
    }
}

/*
 * The binding check plugin.c's in_open makes (binding-check.c), against
 * the QEMU that runs us: -1 with *@errp to refuse.
 */
static int check_vm(const char *path, CprReader *r, char **errp)
{
    CprHost host = { CPR_HS_QEMU_VERSION, exec_warn, "cpr-pmem load" };
    const CprVmdesc *d = cpr_reader_vmdesc(r);
    const CprRecord *rec = cpr_reader_record(r);
    uint8_t head[CPR_STREAM_CONFIG_MAX];
    ParentVm pv;
    ssize_t n;
    int found = parent_vm_find(&pv, errp), ret;

    if (found < 0) {
        return -1;
    }
    if (!found) {
        fprintf(stderr, "cpr-pmem load: %s: warning: not run by a QEMU: its "
                "RAM and command line are not checked\n", path);
        return 0;
    }
    if (d && !parent_vm_argv_is_qemu(d->argv, d->argv_len)) {
        fprintf(stderr, "cpr-pmem load: %s: warning: generation %" PRIu64
                " was saved by an exec: helper that did not record its VM: "
                "the RAM and the command line are not checked\n", path,
                rec->generation);
        parent_vm_free(&pv);
        return 0;
    }
    /* The stream carries all RAM (no x-ignore-shared): none to check. */
    n = cpr_reader_pread(r, 0, head, sizeof(head), errp);
    if (n < 0) {
        parent_vm_free(&pv);
        return -1;
    }
    if (d && cpr_stream_ignores_shared(head, (size_t)n) == 0) {
        pv.qemu.nr_ram = 0;
    }
    /* The machine type and CPU model QEMU resolved are unknown here; a
     * pmem: save recorded them: not compared (the command line is). */
    if (d) {
        pv.qemu.machine = d->machine;
        pv.qemu.cpu = d->cpu;
        if (strcmp(d->qemu_version, CPR_HS_QEMU_VERSION)) {
            host.qemu_version = d->qemu_version;
        }
    }
    ret = cpr_binding_verify(path, rec, d, &host, &pv.vm, errp);
    parent_vm_free(&pv);
    return ret;
}

/* tool_load -- cpr-pmem load: the verified image to stdout (exec.h). */
int tool_load(const char *path)
{
    CprReader *r;
    uint64_t sent = 0, total;
    uint8_t *buf;
    char *err = NULL;
    int ret = TOOL_REFUSED;

    /* QEMU may stop reading (a failed load): EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr, "cpr-pmem load: writes a migration stream to "
                "stdout: run it as QEMU's exec: command\n");
        return TOOL_USAGE;
    }
    r = cpr_reader_open(path, &err);
    if (!r) {
        fprintf(stderr, "cpr-pmem load: %s; nothing of it was sent to "
                "QEMU\n", err);
        free(err);
        fail_qemu();
        return access(path, F_OK) == 0 ? TOOL_REFUSED : TOOL_USAGE;
    }
    total = cpr_reader_record(r)->stream_len;
    if (check_vm(path, r, &err) < 0) {
        fprintf(stderr, "cpr-pmem load: %s\n", err);
        fprintf(stderr, "cpr-pmem load: %s: nothing of it was sent to "
                "QEMU\n", path);
        free(err);
        cpr_reader_close(r);
        fail_qemu();
        return TOOL_REFUSED;
    }
    fprintf(stderr, "cpr-pmem load: %s: generation %" PRIu64 " verified "
            "(%" PRIu64 " bytes), sending it\n", path,
            cpr_reader_record(r)->generation, total);
    buf = g_malloc(EXEC_IO_CHUNK);
    for (;;) {
        ssize_t n = cpr_reader_read(r, buf, EXEC_IO_CHUNK, &err);

        if (n < 0) {
            fprintf(stderr, "cpr-pmem load: %s (after %" PRIu64 " of %"
                    PRIu64 " bytes)\n", err, sent, total);
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (tool_write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
            fprintf(stderr, "cpr-pmem load: %s: QEMU stopped reading after "
                    "%" PRIu64 " of %" PRIu64 " bytes: %s\n", path, sent,
                    total, strerror(errno));
            goto out;
        }
        sent += (uint64_t)n;
    }
    ret = TOOL_OK;
out:
    /* EOF for QEMU now, before the reader's cleanup. */
    close(STDOUT_FILENO);
    g_free(buf);
    free(err);
    cpr_reader_close(r);
    return ret;
}
