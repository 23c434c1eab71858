/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cpr-host-update: update a host's kernel under running QEMU VMs; its
 * command line (host-update.h: what the parts do).
 */
#include "host-update.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

guint opt_timeout_s = 120;
gboolean opt_file;
gboolean opt_force_cold;
char *opt_times;

static const char usage_text[] =
    "Usage: cpr-host-update save [OPTIONS] QMP_SOCKET[=IMAGE]...\n"
    "       cpr-host-update restore [--manifest=PATH]\n"
    "\n"
    "save: set up every VM for cpr-reboot (x-ignore-shared, mode cpr-reboot),\n"
    "make the images that do not exist yet (cpr-pmem create),\n"
    "save them all at once to pmem:IMAGE (a QEMU without the pmem: transport:\n"
    "through exec:cpr-pmem save, then cpr-pmem wait), check every image with\n"
    "cpr-pmem,\n"
    "write the manifest, then run the reboot command.  Any failure before the\n"
    "reboot command resumes every VM and invalidates this attempt's images.\n"
    "restore: start every VM of the manifest again with its command line\n"
    "(+ -incoming defer), restore it from its image, wait until it runs,\n"
    "print the per-phase table.\n"
    "\n"
    "Options:\n"
    "  --image-dir=DIR     image of a socket without =IMAGE: DIR/NAME.cpr,\n"
    "                      NAME the socket's file name less its extension\n"
    "  --manifest=PATH     default: " MANIFEST_NAME " beside the first image\n"
    "                      (save) -- it must be on the persistent medium\n"
    "  --reboot-cmd=CMD    run with /bin/sh -c (default: " DEFAULT_REBOOT ",\n"
    "                      which needs a kernel loaded with kexec -l)\n"
    "  --force-cold-reboot run a reboot command that is not a kexec even\n"
    "                      when an image or guest RAM is on DRAM-backed\n"
    "                      pmem (e820, memmap=), which it loses; without\n"
    "                      it, save refuses before touching any VM\n"
    "  --dry-run           save and check, then resume every VM; no reboot\n"
    "  --timeout=SECONDS   per QMP step (default 120)\n"
    "  --times=PATH        restore: every phase's times as JSON (epoch us)\n"
    "  --scheme=file       save: QEMU's own file: transport instead of pmem:,\n"
    "                      for comparison measurements only (no image check;\n"
    "                      fdatasync of each image and its directory)\n"
    "  -h, --help\n"
    "\n"
    "Environment: CPR_PMEM, the cpr-pmem tool (default: beside this one, PATH)\n"
    "\n"
    "Exit status: 0 done; 1 failed (save: every VM left as it was; restore:\n"
    "the manifest keeps the VMs not restored); 2 usage\n";

/* main -- the options, then save or restore. */
int main(int argc, char **argv)
{
    g_autofree char *manifest = NULL, *image_dir = NULL, *reboot_cmd = NULL;
    g_autofree char *scheme = NULL;
    gboolean dry_run = FALSE;
    gint timeout = 0;
    g_autoptr(GError) err = NULL;
    GOptionEntry entries[] = {
        { "manifest", 0, 0, G_OPTION_ARG_FILENAME, &manifest, NULL, NULL },
        { "image-dir", 0, 0, G_OPTION_ARG_FILENAME, &image_dir, NULL, NULL },
        { "reboot-cmd", 0, 0, G_OPTION_ARG_STRING, &reboot_cmd, NULL, NULL },
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run, NULL, NULL },
        { "force-cold-reboot", 0, 0, G_OPTION_ARG_NONE, &opt_force_cold, NULL,
          NULL },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout, NULL, NULL },
        { "scheme", 0, 0, G_OPTION_ARG_STRING, &scheme, NULL, NULL },
        { "times", 0, 0, G_OPTION_ARG_FILENAME, &opt_times, NULL, NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);

    for (int i = 1; i < argc; i++) {
        if (g_str_equal(argv[i], "-h") || g_str_equal(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
    }
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc < 2) {
        fprintf(stderr, "cpr-host-update: %s\n%s",
                err ? err->message : "no command", usage_text);
        return EXIT_USAGE;
    }
    if (timeout > 0) {
        opt_timeout_s = timeout;
    }
    if (scheme && !g_str_equal(scheme, "pmem") && !g_str_equal(scheme, "file")) {
        fprintf(stderr, "cpr-host-update: --scheme is pmem or file\n");
        return EXIT_USAGE;
    }
    opt_file = scheme && g_str_equal(scheme, "file");
    /* A QEMU that dies mid-command must not take this tool with it. */
    signal(SIGPIPE, SIG_IGN);
    cpr_pmem_path = find_cpr_pmem(argv[0]);
    if (g_str_equal(argv[1], "save")) {
        return cmd_save(argc - 2, argv + 2, manifest, image_dir,
                        reboot_cmd ? reboot_cmd : DEFAULT_REBOOT, dry_run);
    }
    if (g_str_equal(argv[1], "restore") && argc == 2) {
        if (!manifest) {
            fprintf(stderr, "cpr-host-update: restore needs --manifest\n");
            return EXIT_USAGE;
        }
        return cmd_restore(manifest);
    }
    fprintf(stderr, "cpr-host-update: unknown command '%s'\n%s", argv[1],
            usage_text);
    return EXIT_USAGE;
}
