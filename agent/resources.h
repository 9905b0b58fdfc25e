/*
 * resources.h — the pod's CPU and memory use, read from cgroup v2 once per flush interval.
 *
 * The agent samples its cgroup at every batch seal and ships the result in the batch's
 * MetricsSnapshot (ResourceUsage); the aggregator turns it into cost per 1k predictions.
 * CPU is the growth of `usage_usec` in cpu.stat since the previous sample, memory is
 * memory.current at the time of the sample.
 *
 * Which cgroup: the one given, or else the process's own cgroup v2 directory (the "0::" line
 * of /proc/self/cgroup, under the cgroup2 mount found in /proc/self/mountinfo, normally
 * /sys/fs/cgroup). Under a private cgroup namespace — the default for containers on cgroup v2 —
 * that is the agent container's own cgroup, not the pod's: to measure the whole pod, mount the
 * pod's cgroup directory into the agent and pass its path.
 *
 * A host without cgroup v2, or a cgroup whose files are absent, unreadable or malformed, is
 * not an error: the sample says cgroup_available = false with zero values, and a warning is
 * logged once per mw_resources object. GPU use is not measured yet: gpu_seconds is always 0
 * (a GPU source, e.g. NVML, would be configured per agent and is left for later).
 */
#ifndef MW_AGENT_RESOURCES_H
#define MW_AGENT_RESOURCES_H

#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct mw_resources;

/*
 * Create a sampler over `cgroup_dir` (copied; the caller keeps its string), or over the
 * process's own cgroup v2 directory when `cgroup_dir` is NULL. Reads the CPU counter once as
 * the baseline of the first interval, which starts now (mw_clock_wall_ms()). A cgroup that
 * cannot be found or read still yields a sampler whose samples say cgroup_available = false.
 * Returns NULL only when out of memory. Release with mw_resources_destroy().
 */
struct mw_resources *mw_resources_create(const char *cgroup_dir);

/* Free the sampler. Accepts NULL. */
void mw_resources_destroy(struct mw_resources *r);

/*
 * Fill `out` (initialised here; it owns no heap memory) with the use over the interval from
 * the previous sample (or from creation) to `now_ms`, and start the next interval at `now_ms`
 * (wall-clock ms, the clock of mw_clock_wall_ms(); an earlier time than the interval start
 * gives an empty interval).
 * cpu_seconds is the growth of the CPU counter over the interval; when the counter went down
 * (the cgroup was recreated) or no baseline was readable, it is 0 and the current value becomes
 * the baseline. interval_*_ms and cgroup_available are always set. When either file cannot be
 * read or parsed, cgroup_available is false and cpu_seconds and memory_bytes are 0 and absent
 * (has_* false): all or nothing, so a 0 never passes for a measurement. gpu_seconds is always 0
 * and absent (not measured). Returns 0, or MW_EINVAL for a NULL argument; an unavailable cgroup
 * is not an error.
 */
int mw_resources_sample(struct mw_resources *r, int64_t now_ms, Modelwatch__V1__ResourceUsage *out);

/* The directory sampled, or NULL when none was found. Owned by `r`. */
const char *mw_resources_dir(const struct mw_resources *r);

/*
 * Internal, exposed for tests: find the cgroup v2 directory of the process from the text of
 * its /proc/<pid>/cgroup (`proc_cgroup_path`) and /proc/<pid>/mountinfo (`mountinfo_path`),
 * into out[size]. Returns 0, MW_ENOTFOUND (no cgroup v2 line or mount), MW_EIO (a file is
 * unreadable), MW_EPARSE or MW_ETOOBIG (the path does not fit).
 */
int mw__resources_detect(const char *proc_cgroup_path, const char *mountinfo_path, char *out,
                         size_t size);

#endif
