/* cmd_rules.c — `rules check`: alert rule files loaded offline as the aggregator loads them. */
#include "ctl.h"
#include "alert/rules.h"

#include <string.h>

/* Load each rule file on its own, as the aggregator would (aggregator/alert/rules.h); print
 * what each holds, or its first error. 0 when every file is good, else 1. */
int ctl_cmd_rules_check(int n_files, char **files)
{
    int rc = 0;
    for (int i = 0; i < n_files; i++) {
        struct mw_rule_set set = {0};
        struct mw_cfg_error err = {{0}};
        if (mw_rules_load_file(&set, files[i], &err) != 0) {
            fprintf(stderr, "modelwatch-ctl: %s\n", err.message);
            rc = 1;
        } else {
            size_t n_groups = 0;
            for (size_t r = 0; r < set.n; r++)
                n_groups += r == 0 || strcmp(set.rules[r].group, set.rules[r - 1].group) != 0;
            printf("%s: ok, %zu rule%s in %zu group%s\n", files[i], set.n, set.n == 1 ? "" : "s",
                   n_groups, n_groups == 1 ? "" : "s");
        }
        mw_rule_set_free(&set);
    }
    return rc;
}
