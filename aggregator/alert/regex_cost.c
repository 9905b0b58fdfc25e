/* regex_cost.c — the size of a regular expression once regcomp has expanded its repetitions
 * (see regex_cost.h). Walks the pattern once, keeping for each open group the size of what it
 * holds so far and of its last atom, which a following repetition multiplies. */
#include "regex_cost.h"

#include <stdbool.h>
#include <stdlib.h>

#define MAX_DEPTH 64

struct group {
    double total; /* nodes of everything in the group so far, alternatives added up */
    double last;  /* nodes of its last atom, which a repetition applies to */
};

static void add_atom(struct group *g, double nodes)
{
    g->total += nodes;
    g->last = nodes;
}

/* Repeat the last atom so that it takes `copies` times its size (plus one node). */
static void repeat_last(struct group *g, double copies)
{
    g->total += g->last * (copies - 1) + 1;
    g->last = g->last * copies + 1;
}

/* Past a bracket expression starting at s[i] == '['; returns the index of its closing ']'
 * (or of the terminating NUL when there is none). */
static size_t skip_bracket(const char *s, size_t i)
{
    i++;
    if (s[i] == '^')
        i++;
    if (s[i] == ']')
        i++;
    while (s[i] && s[i] != ']') {
        if (s[i] == '[' && (s[i + 1] == ':' || s[i + 1] == '.' || s[i + 1] == '=')) {
            char kind = s[i + 1];
            for (i += 2; s[i] && !(s[i] == kind && s[i + 1] == ']'); i++)
                ;
            if (s[i])
                i++;
        }
        if (s[i])
            i++;
    }
    return i;
}

/* An interval {n}, {n,} or {n,m} at s[i] == '{': true with *end at its '}' and *copies the
 * most copies it makes; false when it is not an interval (regcomp then reads '{' literally). */
static bool read_interval(const char *s, size_t i, size_t *end, double *copies)
{
    char *p;
    if (s[i + 1] < '0' || s[i + 1] > '9')
        return false;
    double n = strtod(s + i + 1, &p);
    double m = n;
    if (*p == ',') {
        p++;
        if (*p >= '0' && *p <= '9')
            m = strtod(p, &p);
        else
            m = n + 1; /* {n,}: n copies and a star */
    }
    if (*p != '}')
        return false;
    *end = (size_t)(p - s);
    *copies = (m > n ? m : n) + 1;
    return true;
}

size_t mw_regex_cost(const char *s, size_t limit)
{
    struct group stack[MAX_DEPTH];
    size_t depth = 0;
    stack[0] = (struct group){0, 0};
    for (size_t i = 0; s[i]; i++) {
        struct group *g = &stack[depth];
        size_t end;
        double copies;
        switch (s[i]) {
        case '\\':
            add_atom(g, 1);
            if (s[i + 1])
                i++;
            break;
        case '[':
            i = skip_bracket(s, i);
            add_atom(g, 1);
            if (!s[i])
                i--; /* unterminated: stop at the NUL */
            break;
        case '(':
            if (depth + 1 >= MAX_DEPTH)
                return limit + 1;
            stack[++depth] = (struct group){0, 0};
            break;
        case ')':
            if (depth == 0) {
                add_atom(g, 1);
            } else {
                double inner = g->total + 1;
                depth--;
                add_atom(&stack[depth], inner);
            }
            break;
        case '|':
            g->total += 1;
            g->last = 0;
            break;
        case '*':
        case '?':
            repeat_last(g, 1);
            break;
        case '+':
            repeat_last(g, 2);
            break;
        case '{':
            if (read_interval(s, i, &end, &copies)) {
                repeat_last(g, copies);
                i = end;
            } else {
                add_atom(g, 1);
            }
            break;
        default:
            add_atom(g, 1);
        }
        if (stack[depth].total > (double)limit || stack[depth].last > (double)limit)
            return limit + 1;
    }
    double total = 0;
    for (size_t d = 0; d <= depth; d++)
        total += stack[d].total;
    return total > (double)limit ? limit + 1 : (size_t)total;
}
