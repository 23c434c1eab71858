/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The reboot suite's L1 host, for the suite (test-reboot.c) and the
 * blackout bench (bench/blackout.c): an L1 VM under TCG (Debian's cloud
 * kernel, an emulated NVDIMM backed by a file here, fs-dax at /mnt/pmem;
 * scripts/build-l1-image.sh, tests/reboot/l1-init.sh) that serves shell
 * commands on its second serial port.  Every line L1 sends is logged
 * with the time it arrived.  Failures are fatal (g_error), after the
 * tail of L1's console; unless l1_set_tolerant(): then losing L1 (its
 * QEMU died) makes every call return at once (NULL, -1, FALSE) and
 * l1_lost() true, until the next l1_start().
 */
#ifndef REBOOT_L1_HOST_H
#define REBOOT_L1_HOST_H

#include <glib.h>

#define L1_BOOT_TIMEOUT_S 300
#define L1_CMD_TIMEOUT_S  900
/* The second NVDIMM: one namespace in devdax mode, /dev/dax1.0. */
#define L1_DEVDAX_SIZE    "512M"
#define L1_DEVDAX         "/dev/dax1.0"

typedef struct L1Host L1Host;

/*
 * Build the L1 image or find it in the cache: @script (build-l1-image.sh)
 * with the patched QEMU, the build directory and, if not NULL, a stock
 * QEMU to ship as well.  Fills the three paths (g_free); the time it took
 * in *@secs.
 */
void l1_image(const char *script, const char *qemu, const char *build_root,
              const char *stock_qemu, char **kernel, char **initrd,
              char **disk, double *secs);

/*
 * A new L1 in @dir (its NVDIMM backing file of @nvdimm_size and a second
 * NVDIMM's of L1_DEVDAX_SIZE for device DAX, sockets, console and QEMU
 * logs), run by @l1_qemu.  @log gets every line (NULL: g_message).
 */
L1Host *l1_new(const char *dir, const char *l1_qemu, const char *kernel,
               const char *initrd, const char *disk, const char *nvdimm_size,
               void (*log)(const char *line));
void l1_free(L1Host *h);

/*
 * No NVDIMM (l1_new's @nvdimm_size NULL): L1 gets 2 GiB of RAM and boots
 * with memmap=@memmap ("512M!1G"), DRAM-backed pmem of an e820 region
 * (driver nd_e820) that a kexec with the same memmap= keeps.
 */
void l1_use_memmap(L1Host *h, const char *memmap);

/* Losing L1 is not fatal (see above). */
void l1_set_tolerant(L1Host *h, gboolean tolerant);
gboolean l1_lost(L1Host *h);

/* Start L1's QEMU and connect to the agent port; the spawn time. */
gint64 l1_start(L1Host *h);
/* SIGKILL L1's QEMU (a host crash); its NVDIMM keeps what reached it. */
void l1_kill(L1Host *h);

/* Next line from L1 (g_free), logged; *@at: when it arrived. */
char *l1_line(L1Host *h, guint timeout_s, gint64 *at);
/* Read until a line starting with @prefix; the lines before it go to
 * *@out if given. */
char *l1_wait(L1Host *h, const char *prefix, guint timeout_s, gint64 *at,
              GString *out);
void l1_send(L1Host *h, const char *cmd);
/* Run @cmd in L1: its exit status; its output in *@out if given. */
int l1_run(L1Host *h, const char *cmd, GString *out);
void l1_run_ok(L1Host *h, const char *cmd, GString *out);

/*
 * Wait for a boot started at @start: "@@init" (userspace) and "@@ready"
 * (/mnt/pmem mounted with dax).  Times in seconds; *@first_boot says the
 * namespace and filesystem were made on this boot.
 */
gboolean l1_wait_boot(L1Host *h, gint64 start, double *to_userspace,
                      double *to_mounted, gboolean *first_boot);

/* Seconds from @from to @to (monotonic µs). */
static inline double l1_secs(gint64 from, gint64 to)
{
    return (to - from) / 1e6;
}

#endif
