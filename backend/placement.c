/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "placement.h"
#include "format.h"

uint64_t cpr_align_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) / align * align;
}

uint64_t cpr_place_expected(uint64_t len)
{
    return len + len / 4;
}

uint64_t cpr_place_above(uint64_t live_off, uint64_t live_len)
{
    /* The expected size's extra quarter, above the live payload, stays
     * free for the save after next. */
    return cpr_align_up(live_off + cpr_place_expected(live_len) + (1u << 20),
                        CPR_ALIGN);
}

CprPlacement cpr_place_new(uint64_t live_off, uint64_t live_len)
{
    uint64_t expect = cpr_place_expected(live_len);

    if (live_len == 0) {
        return (CprPlacement){ CPR_PAYLOAD_AREA, CPR_NO_LIMIT, 0 };
    }
    /*
     * Below a high live payload if a stream like it fits there (relocating
     * if this one does not); otherwise above it, rather than copy what was
     * written.
     */
    if (live_off <= CPR_PAYLOAD_AREA ||
        live_off - CPR_PAYLOAD_AREA < expect) {
        return (CprPlacement){ cpr_place_above(live_off, live_len),
                               CPR_NO_LIMIT, expect };
    }
    return (CprPlacement){ CPR_PAYLOAD_AREA, live_off - CPR_PAYLOAD_AREA,
                           expect };
}

uint64_t cpr_grow_target(uint64_t cur, uint64_t need)
{
    uint64_t step = cur < CPR_MAX_GROW_STEP ? cur : CPR_MAX_GROW_STEP;
    uint64_t target = cpr_align_up(cur + step, CPR_ALIGN);

    if (need <= cur) {
        return cur;
    }
    return target >= need ? target : cpr_align_up(need, CPR_ALIGN);
}
