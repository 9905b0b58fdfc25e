#!/usr/bin/env python3
"""A model's watermark follows its predictions' event times, not its labels': ground truth
dated now for predictions replayed six hours in the past must not make the rest of the replay
late. With real processes: 3 windows of churn:v1 six hours ago with every label sent (dated
now), then 3 more windows: all 6 x 400 predictions are counted on time, none late."""
import alert_env as env
from harness import api_data, metrics, run, wait_for

PER_WINDOW = 400


def main(tap, cluster):
    cluster.start_redis()
    cluster.start_devkafka()
    agg = cluster.start_aggregator(extra="windows:\n  allowed_lateness: 0s\n"
                                         "  out_of_orderness: 5s\n")
    agent = cluster.start_agent(extra=env.agent_config())
    t0 = env.base_time()
    first = env.send(cluster, agent, ["churn:v1"], t0, 3, PER_WINDOW,
                     extra=["--labels", "1.0", "--id-prefix", "a"])
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total")
             == 3 * PER_WINDOW, 60, "the first windows to be applied")
    def joined():
        return sum(v for k, v in metrics(agg.http_port).items()
                   if k.startswith("modelwatch_labels_joined_total"))
    tap.check(first["labels_sent"] == 3 * PER_WINDOW, "every prediction got its label, dated now",
              str(first["labels_sent"]))
    wait_for(lambda: joined() == first["labels_sent"], 60, "every label to join")
    env.send(cluster, agent, ["churn:v1"], t0 + 3 * env.MINUTE, 3, PER_WINDOW,
             extra=["--id-prefix", "b"], seed=2)
    wait_for(lambda: metrics(agg.http_port).get("modelwatch_aggregator_predictions_total", 0) +
             metrics(agg.http_port).get("modelwatch_aggregator_late_dropped_total", 0)
             >= 6 * PER_WINDOW, 60, "every prediction to be applied")
    m = metrics(agg.http_port)
    tap.check(m.get("modelwatch_aggregator_late_dropped_total", 0) == 0,
              "no prediction counted late", str(m.get("modelwatch_aggregator_late_dropped_total")))
    windows = api_data(agg.http_port, f"/api/v1/models/churn/windows?version=v1&resolution=60"
                                      f"&from={t0}&to={t0 + 5 * env.MINUTE}")["windows"]
    tap.check([w["count"] for w in windows] == [PER_WINDOW] * 6 and
              all(w["late"] == 0 for w in windows),
              "each of the 6 windows counts its 400 predictions on time",
              str([(w["count"], w["late"]) for w in windows]))


if __name__ == "__main__":
    run(main)
