/*
 * regex_cost.h — how big a POSIX extended regular expression grows inside glibc's regcomp.
 *
 * regcomp expands repetition by copying: `X+` becomes `XX*` and `X{n,m}` m copies of X, so
 * stacked or nested repetitions grow exponentially: `a` followed by a hundred `+` (or
 * `((((a)+)+)+)...`) asks for gigabytes. Matchers come from the configuration and from the
 * silences API, so their regular expressions are measured with this before they are compiled.
 */
#ifndef MW_AGGREGATOR_ALERT_REGEX_COST_H
#define MW_AGGREGATOR_ALERT_REGEX_COST_H

#include <stddef.h>

/* An upper estimate of the nodes regcomp builds for `pattern` (REG_EXTENDED), or `limit` + 1 as
 * soon as it exceeds `limit`. A pattern regcomp would refuse may get any estimate. */
size_t mw_regex_cost(const char *pattern, size_t limit);

#endif
