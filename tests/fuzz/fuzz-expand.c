/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The compact image of fuzz-image.h, expanded; shared by the targets. */
#include "fuzz-image.h"
#include "format.h"

#include <string.h>
#include <xxhash.h>

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Re-sign an envelope by its own size field, if it fits the region. */
static void resign(uint8_t *p, uint32_t region)
{
    uint32_t size = p[12] | p[13] << 8 | p[14] << 16 | (uint32_t)p[15] << 24;

    if (size >= 24 && size <= region && size % 8 == 0) {
        put64(p + size - 8, XXH3_64bits(p, size - 8));
    }
}

uint64_t fuzz_expand(const uint8_t *data, size_t size, uint8_t *header)
{
    static const struct { size_t at, len; uint32_t off; } part[] = {
        { FUZZ_SB_AT, CPR_SB_SIZE, CPR_SB_OFFSET },
        { FUZZ_REC0_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(0) },
        { FUZZ_REC1_AT, CPR_REC_SIZE, CPR_SLOT_OFFSET(1) },
    };
    unsigned flags = size ? data[0] : 0;
    const uint8_t *payload = data + FUZZ_PAYLOAD_AT;
    size_t plen = size > FUZZ_PAYLOAD_AT ? size - FUZZ_PAYLOAD_AT : 0;
    uint64_t file_size = size >= FUZZ_PAYLOAD_AT ? CPR_PAYLOAD_AREA + plen :
                         CPR_HEADER_SIZE;

    memset(header, 0, CPR_HEADER_SIZE);
    for (size_t i = 0; i < 3; i++) {
        if (size > part[i].at) {
            size_t n = size - part[i].at;

            memcpy(header + part[i].off, data + part[i].at,
                   n < part[i].len ? n : part[i].len);
        }
    }
    if (flags & FUZZ_RESIGN_SB) {
        resign(header, CPR_SB_SIZE);
    }
    for (unsigned i = 0; i < CPR_NR_SLOTS; i++) {
        uint8_t *p = header + CPR_SLOT_OFFSET(i);
        CprRecord rec;

        if (flags & FUZZ_RESIGN_REC) {
            resign(p, CPR_REC_SIZE);
        }
        /* Point the checksum at the bytes the record describes. */
        if ((flags & FUZZ_SET_XXH3) &&
            cpr_record_decode(p, CPR_REC_SIZE, &rec) == CPR_DECODE_OK &&
            cpr_record_fits(&rec, file_size)) {
            rec.payload_xxh3 = cpr_record_checksum(rec.version,
                payload + (rec.payload_off - CPR_PAYLOAD_AREA),
                rec.payload_len);
            /* cpr_record_encode() zeroes CPR_REC_SIZE bytes. */
            cpr_record_encode(&rec, p);
        }
    }
    return file_size;
}
