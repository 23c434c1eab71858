/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over the VM description decoder (vmdesc.h) and what
 * consumes a decoded description: the command line difference and the
 * binding checks.  An input is a description's bytes, as they follow the
 * stream in a payload (FORMAT.md).  Properties checked:
 *   - the decoder never reads outside the input (ASan) and refuses with a
 *     reason, or returns a description within the documented bounds;
 *   - a decoded description encodes to bytes that decode to the same
 *     encoding (canonical form is a fixed point);
 *   - an argument list differs from itself in nothing;
 *   - the checks at in_open, against a VM without RAM blocks, end in a
 *     verdict without crashing.
 */
#include "fuzz-image.h"
#include "binding.h"
#include "cmdline.h"
#include "format.h"
#include "vmdesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned long fuzz_loaded;

static const char ours[] = "qemu\0-m\0" "512M\0-device\0virtio-rng-pci,id=r\0";

static void check_bounds(const CprVmdesc *d)
{
    CHECK(d->version >= 1 && d->version <= CPR_VMDESC_VERSION);
    CHECK(d->nr_blocks <= CPR_VMDESC_MAX_BLOCKS);
    CHECK(d->argv_len <= CPR_VMDESC_MAX_ARGV);
    CHECK(d->argv_len == 0 || d->argv[d->argv_len - 1] == 0);
    for (uint32_t i = 0; i < d->nr_blocks; i++) {
        const CprVmdescBlock *k = &d->blocks[i];

        CHECK(k->name && *k->name);
        CHECK(k->nr_samples == cpr_vmdesc_nr_samples(k->size));
        for (uint32_t j = 0; j < k->nr_samples; j++) {
            CHECK(k->samples[j].index < cpr_vmdesc_pages(k->size));
        }
    }
}

static void check_diff(const char *a, size_t alen, const char *b,
                       size_t blen, bool same)
{
    CprCmdlineDiff diff;

    CHECK(cpr_cmdline_diff(a, alen, "m", "c", b, blen, "m", "c", &diff) == 0);
    CHECK(!same || diff.nr == 0);
    for (size_t i = 0; i < diff.nr; i++) {
        CHECK(diff.lines[i] && strchr("+-~", diff.lines[i][0]));
    }
    cpr_cmdline_diff_free(&diff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const CprHost host = { "10.0.13-fuzz", NULL, NULL };
    static const QemuTransportVm qvm = { .machine = "m", .cpu = "c" };
    static const CprVm vm = { &qvm, NULL, 0 };
    static const CprRecord rec = { .version = 2, .generation = 1 };
    const char *why = NULL;
    CprVmdesc *d = NULL, *again = NULL;
    uint8_t *enc, *enc2;
    size_t len, len2;
    char *err = NULL;

    if (cpr_vmdesc_decode(data, size, &d, &why) != CPR_VMDESC_OK) {
        CHECK(!d && why);
        return 0;
    }
    CHECK(d);
    check_bounds(d);
    enc = cpr_vmdesc_encode(d, &len);
    CHECK(enc);
    CHECK(cpr_vmdesc_decode(enc, len, &again, &why) == CPR_VMDESC_OK);
    enc2 = cpr_vmdesc_encode(again, &len2);
    CHECK(enc2 && len2 == len && memcmp(enc, enc2, len) == 0);
    check_diff(d->argv, d->argv_len, d->argv, d->argv_len, true);
    check_diff(d->argv, d->argv_len, ours, sizeof(ours) - 1, false);
    check_diff(ours, sizeof(ours) - 1, d->argv, d->argv_len, false);
    cpr_cmdline_set_for_tests(ours, sizeof(ours) - 1);
    if (cpr_binding_verify("/fuzz/vm.cpr", &rec, d, &host, &vm, &err) < 0) {
        CHECK(err);
    } else {
        CHECK(!err && d->nr_blocks == 0);
    }
    free(err);
    free(enc);
    free(enc2);
    cpr_vmdesc_free(again);
    cpr_vmdesc_free(d);
    fuzz_loaded++;
    return 0;
}
