/*
 * fuzz.h — what every fuzz target of tests/fuzz shares.
 *
 * Each fuzz_<decoder>.c defines LLVMFuzzerTestOneInput over one decoder of outside input. The
 * same source links either with libFuzzer (clang, -Dfuzzing=true) or with replay.c, which feeds
 * it the committed corpus and regression inputs in every build.
 */
#ifndef MW_TESTS_FUZZ_H
#define MW_TESTS_FUZZ_H

#include "log.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decoders log each refusal at warn level; millions of them would only slow the run down. */
static inline void mw_fuzz_quiet(void)
{
    mw_log_set_level(MW_LOG_LEVEL_ERROR);
}

#endif
