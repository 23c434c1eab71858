/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Calls transport-pmem.so through the ABI only, as QEMU does, and prints
 * "key value" lines (microseconds, bytes) for cpr-latency to collect:
 *
 *   cpr-abi-micro validate PLUGIN IMAGE
 *       in_open (the whole-image check) and reading the stream back;
 *   cpr-abi-micro save PLUGIN IMAGE BYTES REPS [RAMFILE RAMBYTES]
 *       out_open / out_writev / out_commit / out_close and in_open for a
 *       BYTES stream shaped like QEMU's: 4 KiB pages passed by reference
 *       between small headers, flushed every 64 iovecs (QEMUFile's
 *       MAX_IOV_SIZE).  Medians over REPS.  With RAMFILE, every
 *       repetition saves twice, in alternating order: once with no RAM
 *       left in place (the keys above) and once with one RAM block of
 *       RAMBYTES in RAMFILE, mapped MAP_SHARED as QEMU maps
 *       memory-backend-file,share=on (written if at most 4 GiB, as a
 *       running guest's; sparse above): the *_ram_us keys, and the
 *       binding's own share of out_open, out_commit (the pause) and
 *       in_open as binding_*_us, medians of the pairwise differences.
 *
 * PMEM_IS_PMEM_FORCE is read once per process, hence a separate program.
 */
#include "micro-time.h"
#include "qemu/transport-plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE     4096
#define HDR      8
#define MAX_IOV  64

static void die(const char *what, char *err)
{
    fprintf(stderr, "cpr-abi-micro: %s: %s\n", what, err ? err : "failed");
    free(err);
    exit(1);
}

/* Every save of a run warns alike (a volatile image or RAM): once is
 * enough. */
static void warn(const char *msg)
{
    static int shown;

    if (!shown++) {
        fprintf(stderr, "cpr-abi-micro: warning: %s (further warnings not "
                "shown)\n", msg);
    }
}

/* This program is the VM: no RAM left in place (the stream carries it). */
static const QemuTransportVm bench_vm = { NULL, 0, "bench", "bench",
                                          sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };

static const QemuTransportOps *load(const char *plugin)
{
    static const QemuTransportHostInfo host = {
        QEMU_TRANSPORT_PLUGIN_MIN_VERSION, QEMU_TRANSPORT_PLUGIN_VERSION,
        "10.0.0-bench", warn,
    };
    void *h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    QemuTransportInitFunc init;
    const QemuTransportOps *ops = NULL;
    char *err = NULL;

    if (!h) {
        fprintf(stderr, "cpr-abi-micro: %s\n", dlerror());
        exit(1);
    }
    init = (QemuTransportInitFunc)dlsym(h, QEMU_TRANSPORT_INIT_SYMBOL);
    if (!init || !(ops = init(&host, &err))) {
        die(plugin, err);
    }
    return ops;
}

/* in_open time; *bytes gets the stream length read back. */
static double validate(const QemuTransportOps *ops, const char *image,
                       const QemuTransportVm *vm, long long *bytes)
{
    static char buf[1 << 16];
    struct iovec iov = { buf, sizeof(buf) };
    char *err = NULL;
    double t0 = now_us(), t;
    QemuTransportIn *in = ops->in_open(image, vm, &err);
    ssize_t n;

    t = now_us() - t0;
    if (!in) {
        die(image, err);
    }
    *bytes = 0;
    /* bounded by the image size: every read either advances or ends */
    while ((n = ops->in_readv(in, &iov, 1, &err)) > 0) {
        *bytes += n;
    }
    if (n < 0) {
        die(image, err);
    }
    ops->in_close(in);
    return t;
}

/* One save of @len bytes of @vm; fills the phase times. */
static void save_once(const QemuTransportOps *ops, const char *image,
                      const QemuTransportVm *vm, const uint8_t *pages,
                      size_t len, double *t)
{
    static uint8_t hdr[MAX_IOV][HDR];
    struct iovec iov[MAX_IOV];
    char *err = NULL;
    double t0 = now_us();
    QemuTransportOut *out = ops->out_open(image, vm, &err);
    size_t done = 0;

    if (!out) {
        die(image, err);
    }
    t[0] = now_us() - t0;
    t0 = now_us();
    while (done < len) {
        int n = 0;

        for (; n + 2 <= MAX_IOV && done < len; n += 2) {
            size_t chunk = len - done < PAGE + HDR ? len - done : PAGE + HDR;

            iov[n] = (struct iovec){ hdr[n / 2], chunk < HDR ? chunk : HDR };
            iov[n + 1] = (struct iovec){ (void *)(pages + done % (1 << 20)),
                                         chunk > HDR ? chunk - HDR : 0 };
            done += chunk;
        }
        if (ops->out_writev(out, iov, n, &err) < 0) {
            die(image, err);
        }
    }
    t[1] = now_us() - t0;
    t0 = now_us();
    if (ops->out_commit(out, vm, &err) < 0) {
        die(image, err);
    }
    t[2] = now_us() - t0;
    t0 = now_us();
    ops->out_close(out);
    t[3] = now_us() - t0;
}

/* One RAM block of @size bytes in @path, as QEMU maps it; its VM in @vm. */
static void map_ram(const char *path, uint64_t size, QemuTransportRamBlock *rb,
                    QemuTransportVm *vm)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint8_t *host;

    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        fprintf(stderr, "cpr-abi-micro: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (host == MAP_FAILED) {
        fprintf(stderr, "cpr-abi-micro: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    if (size <= (4ull << 30)) {
        for (uint64_t off = 0; off < size; off += PAGE) {
            host[off] = (uint8_t)(off >> 12);
        }
    }
    *rb = (QemuTransportRamBlock){ "pc.ram", host, size, fd, 0,
                                   QEMU_TRANSPORT_RAM_SHARED };
    *vm = (QemuTransportVm){ rb, 1, "bench", "bench",
                             sizeof(QemuTransportRamBlock),
        NULL, 0, sizeof(QemuTransportDisk) };
}

enum { K_OPEN, K_WRITEV, K_COMMIT, K_CLOSE, K_IN_OPEN, N_K };

static void save(const QemuTransportOps *ops, const char *image, size_t len,
                 int reps, const char *ram_path, uint64_t ram_size)
{
    static const char *const names[N_K] = {
        "out_open_us", "out_writev_us", "out_commit_us", "out_close_us",
        "in_open_us",
    };
    static const char *const ram_names[N_K] = {
        "out_open_ram_us", "out_writev_ram_us", "out_commit_ram_us",
        "out_close_ram_us", "in_open_ram_us",
    };
    double *v[N_K], *w[N_K], *d = calloc(reps, sizeof(double));
    uint8_t *pages = malloc((1 << 20) + PAGE);
    QemuTransportRamBlock rb;
    QemuTransportVm ram_vm;
    long long bytes;

    for (int k = 0; k < N_K; k++) {
        v[k] = calloc(reps, sizeof(double));
        w[k] = calloc(reps, sizeof(double));
    }
    for (size_t i = 0; i < (1 << 20) + PAGE; i++) {
        pages[i] = (uint8_t)(i * 131 + 7);
    }
    if (ram_path) {
        map_ram(ram_path, ram_size, &rb, &ram_vm);
    }
    for (int r = 0; r < reps; r++) {
        for (int pass = 0; pass < (ram_path ? 2 : 1); pass++) {
            /* alternate which goes first, so neither always pays more */
            int with_ram = ram_path && (pass ^ (r & 1));
            const QemuTransportVm *vm = with_ram ? &ram_vm : &bench_vm;
            double **out = with_ram ? w : v;
            double t[4];

            save_once(ops, image, vm, pages, len, t);
            for (int k = 0; k < 4; k++) {
                out[k][r] = t[k];
            }
            out[K_IN_OPEN][r] = validate(ops, image, vm, &bytes);
            if ((size_t)bytes != len) {
                fprintf(stderr, "cpr-abi-micro: read back %lld of %zu "
                        "bytes\n", bytes, len);
                exit(1);
            }
        }
    }
    if (ram_path) {
        static const struct { const char *key; int k; } diffs[] = {
            { "binding_open_us", K_OPEN }, { "binding_commit_us", K_COMMIT },
            { "binding_in_open_us", K_IN_OPEN },
        };

        for (size_t i = 0; i < sizeof(diffs) / sizeof(*diffs); i++) {
            for (int r = 0; r < reps; r++) {
                d[r] = w[diffs[i].k][r] - v[diffs[i].k][r];
            }
            printf("%s %.1f\n", diffs[i].key, median(d, reps));
        }
        for (int k = 0; k < N_K; k++) {
            printf("%s %.1f\n", ram_names[k], median(w[k], reps));
        }
        printf("ram_bytes %llu\n", (unsigned long long)ram_size);
        munmap((void *)rb.host, ram_size);
        close(rb.fd);
        unlink(ram_path);
    }
    for (int k = 0; k < N_K; k++) {
        printf("%s %.1f\n", names[k], median(v[k], reps));
    }
    for (int r = 0; r < reps; r++) {
        v[0][r] = v[1][r] + v[2][r];
    }
    printf("transport_share_us %.1f\n", median(v[0], reps));
    printf("stream_bytes %zu\n", len);
    for (int k = 0; k < N_K; k++) {
        free(v[k]);
        free(w[k]);
    }
    free(d);
    free(pages);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "validate")) {
        long long bytes;
        double t;

        /*
         * The image comes from a real QEMU: this process has neither its
         * RAM nor its command line.  Measure every check, and let the
         * binding's refusals through (with warnings on stderr).
         */
        setenv("CPR_PMEM_ALLOW", "cmdline,ram", 0);
        t = validate(load(argv[2]), argv[3], &bench_vm, &bytes);

        printf("in_open_us %.1f\nstream_bytes %lld\n", t, bytes);
        return 0;
    }
    if ((argc == 6 || argc == 8) && !strcmp(argv[1], "save")) {
        long long len = atoll(argv[4]);
        int reps = atoi(argv[5]);
        long long ram = argc == 8 ? atoll(argv[7]) : 0;

        if (len <= 0 || reps <= 0 || reps > 100000 ||
            (argc == 8 && ram <= 0)) {
            fprintf(stderr, "cpr-abi-micro: bad BYTES, REPS or RAMBYTES\n");
            return 2;
        }
        save(load(argv[2]), argv[3], (size_t)len, reps,
             argc == 8 ? argv[6] : NULL, (uint64_t)ram);
        return 0;
    }
    fprintf(stderr, "usage: %s validate PLUGIN IMAGE\n"
                    "       %s save PLUGIN IMAGE BYTES REPS [RAMFILE RAMBYTES]\n",
            argv[0], argv[0]);
    return 2;
}
