/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-pmem: create, inspect, verify and invalidate pmem CPR images, in the
 * style of qemu-img; and carry a stock QEMU's exec: migration into and out
 * of them (exec.h).  Images are read only through the transport's own
 * reader, so "check" passes exactly when the transport would load the
 * image.
 */
#include "binding.h"
#include "tool.h"
#include "reader.h"
#include "tool-open.h"
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
    "Usage: cpr-pmem COMMAND [OPTIONS] IMAGE\n"
    "\n"
    "Commands:\n"
    "  create --size=SIZE IMAGE\n"
    "        create IMAGE (or grow it, keeping its saves) with SIZE bytes\n"
    "        (decimal digits, optional K, M, G, T suffix; at most 1048576T)\n"
    "        allocated and faulted in, so that saves do not pay for it;\n"
    "        about 2.5 times the stream holds two saves\n"
    "  info [--output=human|json] IMAGE\n"
    "        show the superblock, both commit record slots, the committed\n"
    "        generation, whether the image would load, the media class\n"
    "        of the image, and what the loadable generation recorded about\n"
    "        its VM (versions, machine, CPU, arguments, seed, RAM blocks\n"
    "        with their files, media classes and sampled pages); in JSON,\n"
    "        checksums are hex strings and a number above 2^63-1 (which\n"
    "        only a forged record holds) is a decimal string\n"
    "  check [--for=reboot|--for=kexec] IMAGE\n"
    "        verify the image exactly as the transport does when loading\n"
    "        (what it can without the VM: structure and checksums);\n"
    "        with --for=reboot, also that the image and every RAM block\n"
    "        it recorded survive a host reboot: NFIT pmem and disk\n"
    "        filesystems do; DRAM-backed pmem (an e820 region, memmap=)\n"
    "        survives only a kexec, which --for=kexec accepts; tmpfs,\n"
    "        ramfs, hugetlbfs, memfd and anonymous memory survive\n"
    "        neither (guest RAM in a disk filesystem's page cache needs a\n"
    "        sync first, which it notes)\n"
    "  invalidate IMAGE\n"
    "        durably mark the image unloadable (a later save still works)\n"
    "  save [--id=ID] IMAGE\n"
    "        exec: helper for a QEMU without the pmem: transport\n"
    "        (migrate \"exec:cpr-pmem save IMAGE\"): read the migration\n"
    "        stream from stdin into a new save of IMAGE, and commit it at\n"
    "        the end of input only if the stream is complete by QEMU's\n"
    "        framing (else the previous save stays the loadable one); no\n"
    "        RAM binding is recorded.  QEMU reports \"completed\" before\n"
    "        the commit: see wait.  ID (letters, digits, ._:@+-, at most\n"
    "        63 bytes) names the attempt for wait\n"
    "  load IMAGE\n"
    "        exec: helper (migrate_incoming \"exec:cpr-pmem load IMAGE\"):\n"
    "        verify the whole image, then write its stream to stdout; of\n"
    "        a refused image nothing is written (to a pipe, four zero\n"
    "        bytes instead, on which QEMU fails at once), and the reason\n"
    "        goes to stderr, QEMU's log\n"
    "  wait [--id=ID] [--timeout=SECONDS] IMAGE\n"
    "        wait until the last exec: save into IMAGE (with --id, the one\n"
    "        so named, once it has started within 60 s) has ended, and say\n"
    "        whether it committed (generation) or failed (why); a helper\n"
    "        that died counts as failed.  --timeout: give up after SECONDS\n"
    "        (0: do not wait)\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exit status:\n"
    "  0  success (check: the image would be loaded, and with\n"
    "     --for=reboot/kexec it would survive that; save and wait: the\n"
    "     save committed)\n"
    "  1  the image is refused: not an image, corrupt, invalidated, ...,\n"
    "     or with --for=, something would not survive the reboot/kexec;\n"
    "     save and wait: the save failed (not committed)\n"
    "  2  usage error, or IMAGE cannot be opened\n"
    "  3  wait: no save recorded, the one named by --id did not start,\n"
    "     or SECONDS passed\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("cpr-pmem: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'cpr-pmem --help' for more information.\n", stderr);
    return TOOL_USAGE;
}

/* Tell "cannot open" (exit 2) from "opened but refused" (exit 1). */
static int check_openable(const char *path)
{
    struct stat st;
    int fd = tool_open_ro(path, &st);

    if (fd == -1) {
        fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    /* Not a regular file: the reader says so (refused, exit 1). */
    if (fd >= 0) {
        close(fd);
    }
    return 0;
}

static int cmd_check(const char *path, const char *for_what)
{
    int ret;

    char *err = NULL;
    CprReader *r;

    if (check_openable(path) < 0) {
        return TOOL_USAGE;
    }
    r = cpr_reader_open(path, &err);
    if (!r) {
        fprintf(stderr, "%s\n", err);
        free(err);
        return TOOL_REFUSED;
    }
    printf("%s: OK, generation %llu, %llu bytes\n", path,
           (unsigned long long)cpr_reader_record(r)->generation,
           (unsigned long long)cpr_reader_record(r)->stream_len);
    ret = for_what ? tool_check_reboot(path, r, !strcmp(for_what, "kexec"))
                   : TOOL_OK;
    cpr_reader_close(r);
    return ret;
}

/* The largest image: what the writer accepts (a stream of up to 2^60
 * bytes), far beyond any file system's limit, and it keeps every offset
 * sum within off_t. */
#define MAX_SIZE (1ull << 60)
#define MAX_SIZE_TEXT "1048576T (2^60 bytes)"

enum { SIZE_OK, SIZE_MALFORMED, SIZE_TOO_LARGE };

/*
 * SIZE[KMGT], decimal digits and binary multiples, nothing else (no
 * sign, space or hex: strtoull would take " -1" as 2^64 - 1).  Sizes
 * that overflow or exceed MAX_SIZE are too large, not wrapped.
 */
static int parse_size(const char *arg, uint64_t *size)
{
    static const char units[] = "KMGT";
    unsigned long long v;
    const char *u;
    char *end;

    if (*arg < '0' || *arg > '9') {
        return SIZE_MALFORMED;
    }
    errno = 0;
    v = strtoull(arg, &end, 10);
    if (*end && (end[1] || !(u = strchr(units, *end)))) {
        return SIZE_MALFORMED;
    }
    if (errno == ERANGE || v > MAX_SIZE) {
        return SIZE_TOO_LARGE;
    }
    if (*end) {
        for (int shift = 10 * (int)(u - units + 1); shift; shift -= 10) {
            if (v > MAX_SIZE >> 10) {
                return SIZE_TOO_LARGE;
            }
            v <<= 10;
        }
    }
    *size = v;
    return v ? SIZE_OK : SIZE_MALFORMED;
}

/* SECONDS: decimal digits, at most a million days. */
static bool parse_seconds(const char *arg, int64_t *secs)
{
    size_t n = strspn(arg, "0123456789");

    if (n == 0 || arg[n] || n > 11) {
        return false;
    }
    *secs = (int64_t)strtoll(arg, NULL, 10);
    return *secs <= 86400ll * 1000000;
}

static int cmd_create(const char *path, uint64_t size)
{
    struct stat st;
    static const CprHost host = { "cpr-pmem create", NULL, NULL };
    char *err = NULL;
    CprWriter *w = cpr_writer_open_vm(path, &host, NULL, &err);

    if (!w || cpr_writer_populate_size(w, size, &err) < 0) {
        cpr_writer_close(w);
        fprintf(stderr, "%s\n", err);
        free(err);
        return TOOL_REFUSED;
    }
    /* What the file is now: at least the 8 MiB of a new image, in 2 MiB
     * steps, never shrunk; all of it is allocated and faulted in. */
    if (stat(path, &st) == 0) {
        size = (uint64_t)st.st_size;
    }
    printf("%s: %llu bytes allocated and faulted in\n", path,
           (unsigned long long)size);
    cpr_writer_close(w);
    return TOOL_OK;
}

static int cmd_invalidate(const char *path)
{
    CprImage h;
    CprWriter *w;
    char *err = NULL;

    /* Never create a file, and refuse what is not an image up front. */
    if (check_openable(path) < 0) {
        return TOOL_USAGE;
    }
    if (cpr_image_open_read(path, &h, &err) < 0) {
        goto refused;
    }
    cpr_image_close(&h);
    w = cpr_writer_open_vm(path,
                           &(CprHost){ "cpr-pmem invalidate", NULL, NULL },
                           NULL, &err);
    if (!w) {
        goto refused;
    }
    if (cpr_writer_invalidate(w, &err) < 0) {
        cpr_writer_close(w);
        goto refused;
    }
    printf("%s: invalidated (generation %llu)\n", path,
           (unsigned long long)cpr_writer_generation(w));
    cpr_writer_close(w);
    return TOOL_OK;
refused:
    fprintf(stderr, "%s\n", err);
    free(err);
    return TOOL_REFUSED;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "output", required_argument, NULL, 'o' },
        { "size", required_argument, NULL, 's' },
        { "for", required_argument, NULL, 'f' },
        { "id", required_argument, NULL, 'i' },
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    const char *output = NULL;
    const char *for_what = NULL;
    const char *size = NULL;
    const char *id = NULL;
    const char *timeout = NULL;
    const char *cmd;
    int c;

    /* Options may come before or after the command ("--help", "info
     * --output=json IMAGE"); '+' would stop at the command name. */
    while ((c = getopt_long(argc, argv, "ho:s:", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            return TOOL_OK;
        case 'o':
            output = optarg;
            break;
        case 's':
            size = optarg;
            break;
        case 'f':
            for_what = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 't':
            timeout = optarg;
            break;
        default:
            return usage_error("%s", "invalid option");
        }
    }
    if (optind >= argc) {
        return usage_error("%s", "missing command");
    }
    cmd = argv[optind++];
    if (strcmp(cmd, "info") && strcmp(cmd, "check") &&
        strcmp(cmd, "invalidate") && strcmp(cmd, "create") &&
        strcmp(cmd, "save") && strcmp(cmd, "load") && strcmp(cmd, "wait")) {
        return usage_error("unknown command '%s'", cmd);
    }
    if (optind != argc - 1) {
        return usage_error("%s: expected exactly one IMAGE", cmd);
    }
    if (output && strcmp(cmd, "info")) {
        return usage_error("%s: --output is only for info", cmd);
    }
    if (for_what && strcmp(cmd, "check")) {
        return usage_error("%s: --for is only for check", cmd);
    }
    if (id && strcmp(cmd, "save") && strcmp(cmd, "wait")) {
        return usage_error("%s: --id is only for save and wait", cmd);
    }
    if (id && !tool_id_valid(id)) {
        return usage_error("--id must be 1 to 63 letters, digits or ._:@+-, "
                           "not '%s'", id);
    }
    if (timeout && strcmp(cmd, "wait")) {
        return usage_error("%s: --timeout is only for wait", cmd);
    }
    if (for_what && strcmp(for_what, "reboot") && strcmp(for_what, "kexec")) {
        return usage_error("--for must be reboot or kexec, not '%s'",
                           for_what);
    }
    if (!size != !!strcmp(cmd, "create")) {
        return usage_error("%s", "--size is for create, and create needs it");
    }
    if (size) {
        uint64_t bytes = 0;

        switch (parse_size(size, &bytes)) {
        case SIZE_OK:
            return cmd_create(argv[optind], bytes);
        case SIZE_TOO_LARGE:
            return usage_error("--size '%s' is too large: at most "
                               MAX_SIZE_TEXT, size);
        default:
            return usage_error("--size must be a positive size such as 3G, "
                               "not '%s'", size);
        }
    }
    if (!strcmp(cmd, "info")) {
        if (output && strcmp(output, "human") && strcmp(output, "json")) {
            return usage_error("--output must be human or json, not '%s'",
                               output);
        }
        if (check_openable(argv[optind]) < 0) {
            return TOOL_USAGE;
        }
        return tool_info(argv[optind], output && !strcmp(output, "json"));
    }
    if (!strcmp(cmd, "check")) {
        return cmd_check(argv[optind], for_what);
    }
    if (!strcmp(cmd, "save")) {
        return tool_save(argv[optind], id);
    }
    if (!strcmp(cmd, "load")) {
        return tool_load(argv[optind]);
    }
    if (!strcmp(cmd, "wait")) {
        int64_t secs = -1;

        if (timeout && !parse_seconds(timeout, &secs)) {
            return usage_error("--timeout must be a number of seconds, not "
                               "'%s'", timeout);
        }
        return tool_wait(argv[optind], id, secs);
    }
    return cmd_invalidate(argv[optind]);
}
