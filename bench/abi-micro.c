/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Calls transport-pmem.so through the ABI only, as QEMU does, and prints
 * "key value" lines (microseconds, bytes) for cpr-latency to collect:
 *
 *   cpr-abi-micro validate PLUGIN IMAGE
 *       in_open (the whole-image check) and reading the stream back;
 *   cpr-abi-micro save PLUGIN IMAGE BYTES REPS
 *       out_open / out_writev / out_commit / out_close and in_open for a
 *       BYTES stream shaped like QEMU's: 4 KiB pages passed by reference
 *       between small headers, flushed every 64 iovecs (QEMUFile's
 *       MAX_IOV_SIZE).  Medians over REPS.
 *
 * PMEM_IS_PMEM_FORCE is read once per process, hence a separate program.
 */
#include "qemu/transport-plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE     4096
#define HDR      8
#define MAX_IOV  64

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, char *err)
{
    fprintf(stderr, "cpr-abi-micro: %s: %s\n", what, err ? err : "failed");
    free(err);
    exit(1);
}

static void warn(const char *msg)
{
    fprintf(stderr, "cpr-abi-micro: warning: %s\n", msg);
}

/* This program is the VM: no RAM left in place (the stream carries it). */
static const QemuTransportVm bench_vm = { NULL, 0, "bench", "bench" };

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
                       long long *bytes)
{
    static char buf[1 << 16];
    struct iovec iov = { buf, sizeof(buf) };
    char *err = NULL;
    double t0 = now_us(), t;
    QemuTransportIn *in = ops->in_open(image, &bench_vm, &err);
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

/* One save of @len bytes; fills the phase times. */
static void save_once(const QemuTransportOps *ops, const char *image,
                      const uint8_t *pages, size_t len, double *t)
{
    static uint8_t hdr[MAX_IOV][HDR];
    struct iovec iov[MAX_IOV];
    char *err = NULL;
    double t0 = now_us();
    QemuTransportOut *out = ops->out_open(image, &bench_vm, &err);
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
    if (ops->out_commit(out, &bench_vm, &err) < 0) {
        die(image, err);
    }
    t[2] = now_us() - t0;
    t0 = now_us();
    ops->out_close(out);
    t[3] = now_us() - t0;
}

static void save(const QemuTransportOps *ops, const char *image, size_t len,
                 int reps)
{
    static const char *const names[] = {
        "out_open_us", "out_writev_us", "out_commit_us", "out_close_us",
        "in_open_us",
    };
    double *v[5];
    uint8_t *pages = malloc((1 << 20) + PAGE);
    long long bytes;

    for (int k = 0; k < 5; k++) {
        v[k] = calloc(reps, sizeof(double));
    }
    for (size_t i = 0; i < (1 << 20) + PAGE; i++) {
        pages[i] = (uint8_t)(i * 131 + 7);
    }
    for (int r = 0; r < reps; r++) {
        double t[4];

        save_once(ops, image, pages, len, t);
        for (int k = 0; k < 4; k++) {
            v[k][r] = t[k];
        }
        v[4][r] = validate(ops, image, &bytes);
        if ((size_t)bytes != len) {
            fprintf(stderr, "cpr-abi-micro: read back %lld of %zu bytes\n",
                    bytes, len);
            exit(1);
        }
    }
    for (int k = 0; k < 5; k++) {
        printf("%s %.1f\n", names[k], median(v[k], reps));
    }
    for (int r = 0; r < reps; r++) {
        v[0][r] = v[1][r] + v[2][r];
    }
    printf("transport_share_us %.1f\n", median(v[0], reps));
    printf("stream_bytes %zu\n", len);
    for (int k = 0; k < 5; k++) {
        free(v[k]);
    }
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
        t = validate(load(argv[2]), argv[3], &bytes);

        printf("in_open_us %.1f\nstream_bytes %lld\n", t, bytes);
        return 0;
    }
    if (argc == 6 && !strcmp(argv[1], "save")) {
        long long len = atoll(argv[4]);
        int reps = atoi(argv[5]);

        if (len <= 0 || reps <= 0 || reps > 100000) {
            fprintf(stderr, "cpr-abi-micro: bad BYTES or REPS\n");
            return 2;
        }
        save(load(argv[2]), argv[3], (size_t)len, reps);
        return 0;
    }
    fprintf(stderr, "usage: %s validate PLUGIN IMAGE\n"
                    "       %s save PLUGIN IMAGE BYTES REPS\n", argv[0], argv[0]);
    return 2;
}
