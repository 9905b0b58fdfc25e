#!/usr/bin/env python3
"""deploy/k8s: every overlay rendered with `kubectl kustomize`, and the rendered objects checked.

For each overlay (deploy/k8s/overlays/*) and for the managed-services example of
deploy/k8s/README.md:
- Pods: non-root, seccomp RuntimeDefault, no service-account token; every container (init
  containers included) without privilege escalation, with a read-only root filesystem, all
  capabilities dropped, CPU and memory requests and a memory limit.
- The model pod: the agent is a native sidecar (init container, restartPolicy Always) after
  the init container that renders its configuration; one emptyDir with a sizeLimit above the
  spool's bound holds the socket (mounted in the model container too), the spool and the
  rendered file; the pod's requests reach the renderer through the downward API. render.sh of
  the rendered ConfigMap is run with what the downward API would give, the real agent accepts
  its output (--check-config) and says (--dump-config) that it listens on the pod IP and
  requests the pod's cores and memory; the probes hit its /healthz and /readyz on that port;
  the PodMonitor scrapes it.
- The aggregator: several replicas, one consumer group, its configuration accepted by the
  real aggregator, listening beyond loopback on the port the probes, the Service and the
  NetworkPolicy use; a PodDisruptionBudget that lets one replica go; the rule files of
  config/rules, identical, in a ConfigMap it mounts, accepted by modelwatch-ctl rules check.
- Secrets: none is rendered; the PagerDuty routing key, the Redis password and the Kafka SASL
  password are mounted from the Secrets named where the configurations read them.
- Kafka (Strimzi): the topics the configurations name, with partitions for every replica,
  replication 3, min.insync.replicas=2 and a retention; users whose names and ACLs match the
  configurations; the bootstrap service the configurations dial.
- Redis: appendonly yes, appendfsync always, maxmemory-policy noeviction, maxmemory below the
  container's limit. The container's own command line is run with a real redis-server (paths
  moved into a temporary directory): it takes the password from the mounted file, keeps those
  settings, and a real aggregator reading the same password file becomes ready against it.
- Monitoring: the ServiceMonitor selects the aggregator's Service port, the PrometheusRule's
  groups pass `promtool check rules` and the unit tests of k8s_prometheusrule_test.yaml.

Without kubectl on the machine the test is skipped, and says so; nothing else is optional.
"""
import copy
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import yaml

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(SOURCE_ROOT, "deploy", "k8s")
HERE = os.path.dirname(os.path.abspath(__file__))

if not shutil.which("kubectl"):
    print("1..0 # SKIP kubectl is not installed: deploy/k8s overlays not rendered "
          "(kubectl 1.32 with kustomize v5 renders them; install-deps.sh does not install it)")
    sys.exit(0)

from harness import TestFailure, free_port, http_get, run, wait_for  # noqa: E402

SECRETS = {
    "pagerduty": "modelwatch-pagerduty",
    "redis": "modelwatch-redis",
    "kafka_agent": "modelwatch-agent",
    "kafka_aggregator": "modelwatch-aggregator",
    "kafka_ca": "modelwatch-cluster-ca-cert",
}
POD_IP = "10.42.7.19"
UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
         "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
         "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
         "kB": 10**3, "MB": 10**6, "GB": 10**9, "kb": 10**3, "mb": 10**6, "gb": 10**9, "": 1}


def quantity(text):
    """Bytes of a Kubernetes quantity or a modelwatch/Redis size ("320Mi", "256MiB", "1gb")."""
    m = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", str(text).strip())
    if not m or m.group(2) not in UNITS:
        raise TestFailure(f"not a size: {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def millicores(text):
    text = str(text)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def render(path):
    out = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if out.returncode:
        raise TestFailure(f"kubectl kustomize {path}: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(objs, kind, name=None):
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs, kind, name=None):
    found = find(objs, kind, name)
    if len(found) != 1:
        raise TestFailure(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def configmap_of(objs, volume):
    """The rendered ConfigMap a configMap volume names (kustomize adds a hash suffix)."""
    return one(objs, "ConfigMap", volume["configMap"]["name"])


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def containers(pod):
    return [("init", c) for c in pod.get("initContainers", [])] + \
        [("main", c) for c in pod.get("containers", [])]


def materialize(objs, pod, container, root):
    """Lay out `container`'s mounts under `root` as the kubelet would (ConfigMap keys as
    files, Secret items as placeholder files, emptyDirs as directories); return the mount
    paths, longest first, so paths in a configuration can be moved under `root`."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    paths = []
    for m in container.get("volumeMounts", []):
        target = root + m["mountPath"]
        os.makedirs(target, exist_ok=True)
        v = volumes.get(m["name"], {})  # absent: a volumeClaimTemplate
        if "configMap" in v:
            for key, value in configmap_of(objs, v).get("data", {}).items():
                with open(os.path.join(target, key), "w") as f:
                    f.write(value)
        elif "secret" in v:
            for item in v["secret"].get("items", []):
                with open(os.path.join(target, item["path"]), "w") as f:
                    f.write("placeholder-secret\n")
        paths.append(m["mountPath"])
    return sorted(paths, key=len, reverse=True)


def relocate(text, paths, root):
    """Every mount path in `text` (a whole path, or the start of one) moved under `root`."""
    if not paths:
        return text
    alternatives = "|".join(re.escape(p.rstrip("/")) for p in sorted(paths, key=len, reverse=True))
    return re.sub(r"(?<![\w/.-])(" + alternatives + r")(?=[/\"'\s]|$)",
                  lambda m: root + m.group(1), text, flags=re.M)


def run_binary(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def dump_config(binary, path, root=None):
    """The effective configuration; with `root`, paths moved under it are moved back."""
    out = run_binary([binary, "--config", path, "--dump-config"])
    if out.returncode:
        raise TestFailure(f"{binary} --dump-config: {out.stderr}")
    return yaml.safe_load(out.stdout.replace(root, "") if root else out.stdout)


def check_hardening(tap, label, objs):
    pods = [(o["kind"], o["metadata"]["name"], o["spec"]["template"]["spec"])
            for o in objs if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]
    tap.check(pods, f"{label}: workloads rendered", str([p[:2] for p in pods]))
    for kind, name, pod in pods:
        sc = pod.get("securityContext", {})
        tap.check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 1) != 0 and
                  sc.get("seccompProfile", {}).get("type") == "RuntimeDefault" and
                  pod.get("automountServiceAccountToken") is False,
                  f"{label}: {kind} {name} runs non-root, seccomp RuntimeDefault, no "
                  f"service-account token", str(sc))
        bad = []
        for where, c in containers(pod):
            csc = c.get("securityContext", {})
            res = c.get("resources", {})
            problems = []
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem")
            if csc.get("capabilities", {}).get("drop") != ["ALL"] or \
                    csc.get("capabilities", {}).get("add"):
                problems.append("capabilities")
            if csc.get("privileged") or csc.get("runAsUser") == 0:
                problems.append("privileged/root")
            if not {"cpu", "memory"} <= set(res.get("requests", {})) or \
                    "memory" not in res.get("limits", {}):
                problems.append("resources")
            if problems:
                bad.append(f"{where} {c['name']}: {problems}")
        tap.check(not bad, f"{label}: {kind} {name}: every container drops all capabilities, "
                  f"cannot escalate, has a read-only root filesystem, requests and limits",
                  "\n".join(bad))


def check_secrets(tap, label, objs):
    tap.check(not find(objs, "Secret"), f"{label}: no Secret is rendered (referenced only)")
    inline = []
    refs = set()
    for o in objs:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = o["spec"]["template"]["spec"]
        for v in pod.get("volumes", []):
            if "secret" in v:
                refs.add(v["secret"]["secretName"])
        for _, c in containers(pod):
            for e in c.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN|KEY", e["name"]) and "value" in e:
                    inline.append(f"{o['metadata']['name']}/{c['name']}: {e['name']}")
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add(ref["name"])
    tap.check(not inline, f"{label}: no secret is written into an environment variable",
              str(inline))
    unknown = refs - set(SECRETS.values())
    tap.check(not unknown, f"{label}: pods reference only the documented Secrets", str(unknown))
    return refs


def secret_mount(pod, container, secret_name, key):
    """The path where `container` sees `key` of Secret `secret_name`, or None."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        v = volumes.get(m["name"], {})
        if v.get("secret", {}).get("secretName") != secret_name:
            continue
        for item in v["secret"].get("items", [{"key": key, "path": key}]):
            if item["key"] == key:
                return os.path.join(m["mountPath"], item["path"])
    return None


def check_model_pod(tap, label, objs, build_dir, work):
    deployments = [d for d in find(objs, "Deployment")
                   if any(c.get("restartPolicy") == "Always" and "agent" in c["image"]
                          for c in d["spec"]["template"]["spec"].get("initContainers", []))]
    tap.check(len(deployments) == 1, f"{label}: one model Deployment with the agent as a native "
              f"sidecar (init container, restartPolicy: Always)",
              str([d["metadata"]["name"] for d in deployments]))
    if not deployments:
        return None
    dep = deployments[0]
    pod = dep["spec"]["template"]["spec"]
    inits = pod["initContainers"]
    agent = next(c for c in inits if c.get("restartPolicy") == "Always")
    renderer = inits[inits.index(agent) - 1] if inits.index(agent) > 0 else None
    tap.check(renderer is not None and renderer.get("restartPolicy") is None and
              renderer["image"] == agent["image"],
              f"{label}: a run-to-completion init container of the agent's image renders the "
              f"configuration before the sidecar starts", str(renderer and renderer["name"]))
    model = pod["containers"][0]

    # The downward API feeds the renderer.
    env = {e["name"]: e.get("valueFrom", {}) for e in renderer.get("env", [])}
    fields = {n: (v.get("fieldRef", {}).get("fieldPath"),
                  v.get("resourceFieldRef", {}).get("containerName"),
                  v.get("resourceFieldRef", {}).get("resource"),
                  str(v.get("resourceFieldRef", {}).get("divisor", "")))
              for n, v in env.items()}
    want = {"POD_IP": ("status.podIP", None, None, ""),
            "MODEL_CPU_MILLICORES": (None, model["name"], "requests.cpu", "1m"),
            "MODEL_MEMORY_BYTES": (None, model["name"], "requests.memory", "1"),
            "AGENT_CPU_MILLICORES": (None, agent["name"], "requests.cpu", "1m"),
            "AGENT_MEMORY_BYTES": (None, agent["name"], "requests.memory", "1")}
    tap.check(all(fields.get(k) == v for k, v in want.items()),
              f"{label}: the pod IP and the model's and agent's CPU and memory requests reach "
              f"the renderer through the downward API", str(fields))

    # Run render.sh as the init container would, with the real agent.
    root = tempfile.mkdtemp(prefix="mw-k8s-pod-", dir=work)
    paths = sorted(set(materialize(objs, pod, renderer, root)) |
                   set(materialize(objs, pod, agent, root)), key=len, reverse=True)
    command = renderer.get("command", []) + renderer.get("args", [])
    tap.check(command[:1] == ["/bin/sh"] and len(command) >= 2,
              f"{label}: the renderer runs a script with /bin/sh", str(command))
    script = relocate(command[1], paths, root)
    argv = ["sh", script] + [relocate(a, paths, root) for a in command[2:]]
    run_env = dict(os.environ, POD_IP=POD_IP,
                   MODEL_CPU_MILLICORES=str(millicores(model["resources"]["requests"]["cpu"])),
                   MODEL_MEMORY_BYTES=str(quantity(model["resources"]["requests"]["memory"])),
                   AGENT_CPU_MILLICORES=str(millicores(agent["resources"]["requests"]["cpu"])),
                   AGENT_MEMORY_BYTES=str(quantity(agent["resources"]["requests"]["memory"])),
                   MODELWATCH_AGENT=os.path.join(build_dir, "agent", "modelwatch-agent"))
    # The template names mounted paths; the renderer's output is read by the agent there.
    template = argv[2] if len(argv) > 2 else None
    if template and os.path.exists(template):
        with open(template) as f:
            text = f.read()
        with open(template, "w") as f:
            f.write(relocate(text, paths, root))
    out = run_binary(argv, env=run_env)
    tap.check(out.returncode == 0 and ": ok" in out.stdout,
              f"{label}: render.sh renders a configuration the real agent accepts "
              f"(--check-config)", out.stdout + out.stderr)
    args = agent.get("args", [])
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    rendered = root + config_path if config_path else ""
    if out.returncode or not os.path.exists(rendered):
        return None
    cfg = dump_config(run_env["MODELWATCH_AGENT"], rendered, root)
    total_cores = (int(run_env["MODEL_CPU_MILLICORES"]) + int(run_env["AGENT_CPU_MILLICORES"])) / 1000
    total_memory = int(run_env["MODEL_MEMORY_BYTES"]) + int(run_env["AGENT_MEMORY_BYTES"])
    tap.check(abs(float(cfg["resources"]["requested_cores"]) - total_cores) < 1e-9 and
              quantity(cfg["resources"]["requested_memory"]) == total_memory,
              f"{label}: the agent's resources.requested_cores/requested_memory are the pod's "
              f"requests ({total_cores} cores, {total_memory} bytes)", str(cfg["resources"]))
    tap.check(str(cfg["http"]["host"]) == POD_IP,
              f"{label}: the agent's http.host is the pod IP", str(cfg["http"]))

    # Probes and ports.
    port = int(cfg["http"]["port"])
    ports = {p["name"]: p["containerPort"] for p in agent.get("ports", [])}

    def probe(kind):
        http = agent.get(kind, {}).get("httpGet", {})
        p = http.get("port")
        return http.get("path"), ports.get(p, p)
    tap.check(probe("livenessProbe") == ("/healthz", port) and
              probe("readinessProbe") == ("/readyz", port) and
              probe("startupProbe") == ("/healthz", port),
              f"{label}: the agent's liveness/startup probe is /healthz and readiness /readyz on "
              f"its http.port {port}",
              str([probe(k) for k in ("livenessProbe", "readinessProbe", "startupProbe")]))

    # The shared emptyDir: socket, spool, rendered configuration.
    volumes = {v["name"]: v for v in pod["volumes"]}
    endpoint = cfg["intake"]["endpoint"]
    sock_dir = os.path.dirname(endpoint[len("ipc://"):]) if endpoint.startswith("ipc://") else None
    spool_dir = cfg["spool"]["dir"]

    def mount_of(c, path):
        for m in c.get("volumeMounts", []):
            if m["mountPath"].rstrip("/") == path.rstrip("/"):
                return m
        return None
    mounts = {"socket (agent)": mount_of(agent, sock_dir or "/nonexistent"),
              "socket (model)": mount_of(model, sock_dir or "/nonexistent"),
              "spool": mount_of(agent, spool_dir),
              "configuration": mount_of(agent, os.path.dirname(config_path))}
    names = {k: m and m["name"] for k, m in mounts.items()}
    shared = set(names.values())
    vol = volumes.get(next(iter(shared))) if len(shared) == 1 and None not in shared else None
    tap.check(vol is not None and "emptyDir" in vol,
              f"{label}: one emptyDir holds the socket (in the agent and the model container), "
              f"the spool and the rendered configuration", str(names))
    if vol:
        limit = quantity(vol["emptyDir"].get("sizeLimit", "0"))
        spool_max = quantity(cfg["spool"]["max_bytes"])
        segment = quantity(cfg["spool"]["segment_bytes"])
        tap.check(limit >= spool_max + 2 * segment,
                  f"{label}: the emptyDir's sizeLimit ({limit}) holds spool.max_bytes "
                  f"({spool_max}) and two segments more", str(vol))
        tap.check(quantity(agent["resources"]["requests"].get("ephemeral-storage", "0")) >= limit,
                  f"{label}: the agent requests the ephemeral storage its emptyDir may use",
                  str(agent["resources"]))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    tap.check(grace > int(str(cfg["shutdown_grace"]).rstrip("s")),
              f"{label}: terminationGracePeriodSeconds ({grace}) exceeds the agent's "
              f"shutdown_grace ({cfg['shutdown_grace']})")
    sc = pod["securityContext"]
    tap.check(cfg["intake"]["socket_mode"] in ("0660", "0666") and sc.get("fsGroup"),
              f"{label}: the model container can send to the socket (mode "
              f"{cfg['intake']['socket_mode']}, pod fsGroup {sc.get('fsGroup')})")

    # Kafka credentials where the configuration reads them.
    props = cfg["kafka"]["properties"]
    tap.check(secret_mount(pod, agent, SECRETS["kafka_agent"], "password") ==
              props.get("sasl.password_file") and
              secret_mount(pod, agent, SECRETS["kafka_ca"], "ca.crt") ==
              props.get("ssl.ca.location"),
              f"{label}: the agent's SASL password and the cluster CA come from their Secrets "
              f"at the paths its configuration reads", str(props))

    # Prometheus finds the agent.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    pms = find(objs, "PodMonitor")
    ok = [pm for pm in pms if selects(pm["spec"]["selector"], labels) and
          any(e.get("port") in ports and ports[e["port"]] == port
              for e in pm["spec"]["podMetricsEndpoints"])]
    tap.check(not pms or ok, f"{label}: the PodMonitor scrapes the agent's port",
              str([pm["spec"] for pm in pms]))
    return cfg


def check_aggregator(tap, label, objs, build_dir, work, rules_dir):
    dep = one(objs, "Deployment", "modelwatch-aggregator")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    tap.check(dep["spec"].get("replicas", 1) >= 2,
              f"{label}: the aggregator runs {dep['spec'].get('replicas', 1)} replicas")
    root = tempfile.mkdtemp(prefix="mw-k8s-agg-", dir=work)
    paths = materialize(objs, pod, c, root)
    args = c.get("args", [])
    config_path = args[args.index("--config") + 1]
    with open(root + config_path) as f:
        text = f.read()
    local = os.path.join(root, "aggregator.local.yaml")
    with open(local, "w") as f:
        f.write(relocate(text, paths, root))
    binary = os.path.join(build_dir, "aggregator", "modelwatch-aggregator")
    out = run_binary([binary, "--config", local, "--check-config"])
    tap.check(out.returncode == 0, f"{label}: the real aggregator accepts the rendered "
              f"configuration (--check-config)", out.stdout + out.stderr)
    cfg = yaml.safe_load(text)
    eff = dump_config(binary, local, root)
    port = int(eff["http"]["port"])
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    tap.check(eff["http"]["host"] not in ("127.0.0.1", "localhost", "::1") and
              port in ports.values(),
              f"{label}: the aggregator listens beyond loopback on its container port {port}",
              str(eff["http"]))

    def probe(kind):
        http = c.get(kind, {}).get("httpGet", {})
        return http.get("path"), ports.get(http.get("port"), http.get("port"))
    tap.check(probe("livenessProbe") == ("/healthz", port) and
              probe("readinessProbe") == ("/readyz", port),
              f"{label}: the aggregator's probes are /healthz and /readyz on port {port}")
    tap.check(bool(eff["consumer"]["group_id"]),
              f"{label}: all replicas read one file: one consumer group "
              f"({eff['consumer']['group_id']})")

    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = one(objs, "Service", "modelwatch-aggregator")
    svc_port = svc["spec"]["ports"][0]
    target = svc_port.get("targetPort")
    tap.check(selects({"matchLabels": svc["spec"]["selector"]}, labels) and
              ports.get(target, target) == port,
              f"{label}: the Service selects the aggregator and targets its port")
    pdb = one(objs, "PodDisruptionBudget", "modelwatch-aggregator")
    replicas = dep["spec"].get("replicas", 1)
    allows = (pdb["spec"].get("maxUnavailable", 0) >= 1 if "maxUnavailable" in pdb["spec"]
              else pdb["spec"].get("minAvailable", replicas) < replicas)
    tap.check(selects(pdb["spec"]["selector"], labels) and allows and
              (pdb["spec"].get("minAvailable", 1) >= 1),
              f"{label}: the PodDisruptionBudget keeps a replica and lets one go",
              str(pdb["spec"]))
    nps = [n for n in find(objs, "NetworkPolicy") if selects(n["spec"]["podSelector"], labels)]
    tap.check(len(nps) == 1, f"{label}: a NetworkPolicy selects the aggregator")
    if nps:
        np = nps[0]["spec"]

        def port_numbers(rules):
            got = set()
            for r in rules:
                for p in r.get("ports", []):
                    n = ports.get(p["port"], p["port"])
                    got.update(range(n, p.get("endPort", n) + 1))
            return got
        kafka_port = int(eff["kafka"]["bootstrap_servers"].split(",")[0].rsplit(":", 1)[1])
        egress = port_numbers(np.get("egress", []))
        tap.check(set(np["policyTypes"]) == {"Ingress", "Egress"} and
                  port_numbers(np.get("ingress", [])) == {port} and
                  {53, kafka_port, int(eff["redis"]["port"]), 443} <= egress,
                  f"{label}: the NetworkPolicy admits only the HTTP port and lets out DNS, "
                  f"Kafka ({kafka_port}), Redis and HTTPS", str(np))

    # Secrets where the configuration reads them.
    props = eff["kafka"]["properties"]
    tap.check(secret_mount(pod, c, SECRETS["redis"], "password") == eff["redis"]["password_file"],
              f"{label}: the Redis password comes from Secret {SECRETS['redis']} at "
              f"redis.password_file")
    tap.check(secret_mount(pod, c, SECRETS["kafka_aggregator"], "password") ==
              props.get("sasl.password_file") and
              secret_mount(pod, c, SECRETS["kafka_ca"], "ca.crt") == props.get("ssl.ca.location"),
              f"{label}: the Kafka SASL password and CA come from their Secrets at the paths the "
              f"configuration reads", str(props))
    tap.check(secret_mount(pod, c, SECRETS["pagerduty"], "routing-key") is not None,
              f"{label}: the PagerDuty routing key is mounted from Secret {SECRETS['pagerduty']}")

    # Rule files.
    volumes = {v["name"]: v for v in pod["volumes"]}
    rule_cms = [configmap_of(objs, volumes[m["name"]]) for m in c["volumeMounts"]
                if "configMap" in volumes[m["name"]] and m["mountPath"].endswith("/rules")]
    data = rule_cms[0]["data"] if rule_cms else {}
    want = {os.path.basename(p): open(p).read()
            for p in glob.glob(os.path.join(SOURCE_ROOT, "config", "rules", "*.yaml"))}
    differ = sorted(k for k in set(want) | set(data) if want.get(k) != data.get(k))
    tap.check(rule_cms and not differ,
              f"{label}: the aggregator mounts a ConfigMap with every rule file of config/rules, "
              f"identical (cp config/rules/*.yaml deploy/k8s/base/rules/ after a change)",
              str(differ))
    if data:
        files = []
        for k, v in data.items():
            p = os.path.join(rules_dir, f"{label}-{k}")
            with open(p, "w") as f:
                f.write(v)
            files.append(p)
        out = run_binary([os.path.join(build_dir, "tools", "modelwatch-ctl"), "rules", "check"]
                         + files)
        tap.check(out.returncode == 0, f"{label}: modelwatch-ctl rules check passes the rendered "
                  f"rule files", out.stdout + out.stderr)
    return eff, cfg


def check_kafka(tap, label, objs, agent_cfg, agg_cfg):
    kafkas = find(objs, "Kafka")
    if not kafkas:
        tap.check(True, f"{label}: no Strimzi Kafka rendered (a managed Kafka)")
        return
    kafka = kafkas[0]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap"
    listeners = {l["port"]: l for l in kafka["spec"]["kafka"]["listeners"]}
    for who, cfg in (("agent", agent_cfg), ("aggregator", agg_cfg)):
        if not cfg:
            continue
        host, port = cfg["kafka"]["bootstrap_servers"].split(",")[0].rsplit(":", 1)
        lst = listeners.get(int(port), {})
        tap.check(host.split(".")[0] == bootstrap and lst.get("tls") and
                  lst.get("authentication", {}).get("type") ==
                  cfg["kafka"]["properties"].get("sasl.mechanisms", "").lower() and
                  cfg["kafka"]["properties"].get("security.protocol") == "SASL_SSL",
                  f"{label}: the {who} dials the Strimzi bootstrap service's TLS SCRAM listener",
                  f"{host}:{port} vs {bootstrap} {lst}")
    broker = kafka["spec"]["kafka"].get("config", {})
    tap.check(int(broker.get("min.insync.replicas", 1)) == 2 and
              int(broker.get("default.replication.factor", 1)) >= 3,
              f"{label}: the Kafka cluster defaults to replication 3, min.insync.replicas=2")
    pools = find(objs, "KafkaNodePool")
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    tap.check(brokers >= 3, f"{label}: {brokers} brokers")
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in find(objs, "KafkaTopic")}
    replicas = one(objs, "Deployment", "modelwatch-aggregator")["spec"].get("replicas", 1)
    wanted = {agg_cfg["kafka"]["topic"], agg_cfg["consumer"]["dlq_topic"]}
    if agent_cfg:
        wanted.add(agent_cfg["kafka"]["topic"])
    for name in sorted(wanted):
        t = topics.get(name)
        spec = t["spec"] if t else {}
        conf = spec.get("config", {})
        tap.check(t is not None and spec.get("replicas", 0) >= 3 and
                  int(conf.get("min.insync.replicas", 0)) == 2 and
                  int(conf.get("retention.ms", 0)) > 0 and
                  (name != agg_cfg["kafka"]["topic"] or spec.get("partitions", 0) >= replicas),
                  f"{label}: KafkaTopic {name}: partitions {spec.get('partitions')}, replicas "
                  f"{spec.get('replicas')}, min.insync.replicas=2, retention "
                  f"{conf.get('retention.ms')} ms", str(spec))
    users = {u["metadata"]["name"]: u for u in find(objs, "KafkaUser")}

    def acl(user, rtype, rname, op):
        for a in user["spec"].get("authorization", {}).get("acls", []):
            r = a["resource"]
            if r["type"] == rtype and r.get("name") == rname and \
                    op in (a.get("operations") or [a.get("operation")]):
                return True
        return False
    if agent_cfg:
        u = users.get(agent_cfg["kafka"]["properties"]["sasl.username"])
        tap.check(u is not None and u["metadata"]["name"] == SECRETS["kafka_agent"] and
                  acl(u, "topic", agent_cfg["kafka"]["topic"], "Write"),
                  f"{label}: KafkaUser of the agent (Secret {SECRETS['kafka_agent']}) may write "
                  f"the topic")
    u = users.get(agg_cfg["kafka"]["properties"]["sasl.username"])
    tap.check(u is not None and u["metadata"]["name"] == SECRETS["kafka_aggregator"] and
              acl(u, "topic", agg_cfg["kafka"]["topic"], "Read") and
              acl(u, "group", agg_cfg["consumer"]["group_id"], "Read") and
              acl(u, "topic", agg_cfg["consumer"]["dlq_topic"], "Write"),
              f"{label}: KafkaUser of the aggregator (Secret {SECRETS['kafka_aggregator']}) may "
              f"read the topic in its group and write the dead-letter topic")


def redis_conf(text):
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key.lower()] = value.strip().strip('"')
    return conf


def resp(sock, *args):
    payload = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
    sock.sendall(payload.encode())
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"*") and data.count(b"\r\n") <
                                         1 + 2 * int(data.split(b"\r\n")[0][1:] or 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def check_redis(tap, label, objs, agg_eff, cluster, work):
    sts = find(objs, "StatefulSet", "modelwatch-redis")
    if not sts:
        tap.check(True, f"{label}: no Redis rendered (a managed Redis)")
        return
    sts = sts[0]
    pod = sts["spec"]["template"]["spec"]
    c = pod["containers"][0]
    svc = one(objs, "Service", agg_eff["redis"]["host"])
    tap.check(selects({"matchLabels": svc["spec"]["selector"]},
                      sts["spec"]["template"]["metadata"]["labels"]) and
              svc["spec"]["ports"][0]["port"] == int(agg_eff["redis"]["port"]),
              f"{label}: redis.host/port name the Redis Service")
    volumes = {v["name"]: v for v in pod["volumes"]}
    conf_mounts = [(m, configmap_of(objs, volumes[m["name"]])) for m in c["volumeMounts"]
                   if "configMap" in volumes.get(m["name"], {})]
    text = next(iter(conf_mounts[0][1]["data"].values())) if conf_mounts else ""
    conf = redis_conf(text)
    limit = quantity(c["resources"]["limits"]["memory"])
    tap.check(conf.get("appendonly") == "yes" and conf.get("appendfsync") == "always" and
              conf.get("maxmemory-policy") == "noeviction" and
              0 < quantity(conf.get("maxmemory", "0")) < limit,
              f"{label}: redis.conf: appendonly yes, appendfsync always, noeviction, maxmemory "
              f"{conf.get('maxmemory')} below the {c['resources']['limits']['memory']} limit",
              str(conf))
    tap.check(any(t["metadata"]["name"] == "data" for t in sts["spec"].get("volumeClaimTemplates", []))
              and any(m["name"] == "data" and m["mountPath"] == conf.get("dir")
                      for m in c["volumeMounts"]),
              f"{label}: the AOF is on a persistent volume at Redis's dir {conf.get('dir')}")

    # The container's command, for real: a redis-server with the mounted files under a
    # temporary root, on a free port.
    exe = shutil.which("redis-server")
    if not exe:
        raise TestFailure("redis-server is not installed (the test needs a real Redis)")
    root = tempfile.mkdtemp(prefix="mw-k8s-redis-", dir=work)
    paths = materialize(objs, pod, c, root)
    password = "k8s-render-" + os.urandom(6).hex()
    with open(root + secret_mount(pod, c, SECRETS["redis"], "password"), "w") as f:
        f.write(password + "\n")
    port = free_port()
    conf_path = root + conf_mounts[0][0]["mountPath"] + "/" + \
        next(iter(conf_mounts[0][1]["data"]))
    with open(conf_path, "w") as f:
        f.write(relocate(text, paths, root).replace("port 6379", f"port {port}")
                .replace("bind * -::*", "bind 127.0.0.1"))
    command = c["command"] + c.get("args", [])
    tap.check(command[:2] == ["/bin/sh", "-c"] and password not in " ".join(command),
              f"{label}: Redis's command line carries no password")
    script = relocate(command[2], paths, root).replace("redis-server ", f"{exe} ", 1)
    proc = cluster.spawn(f"redis-{label}", ["/bin/sh", "-c", script] + command[3:])
    try:
        def ready():
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return resp(s, "AUTH", password).startswith("+OK")
        wait_for(ready, 15, "redis-server started with the manifest's command")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            noauth = resp(s, "PING")
            resp(s, "AUTH", password)
            got = {k: resp(s, "CONFIG", "GET", k).split("\r\n")[-2]
                   for k in ("appendonly", "appendfsync", "maxmemory-policy", "requirepass")}
        tap.check(noauth.startswith("-NOAUTH"), f"{label}: Redis refuses clients without the "
                  f"password", noauth)
        tap.check(got["appendonly"] == "yes" and got["appendfsync"] == "always" and
                  got["maxmemory-policy"] == "noeviction" and got["requirepass"] == password,
                  f"{label}: the running Redis has the password from the mounted file, AOF with "
                  f"fsync always and noeviction", str({k: v for k, v in got.items()
                                                        if k != "requirepass"}))
        # A real aggregator with the password file of the manifests becomes ready against it.
        if not os.path.exists(cluster.bootstrap_file):
            cluster.start_devkafka()
        pw_file = os.path.join(root, "aggregator-redis-password")
        with open(pw_file, "w") as f:
            f.write(password + "\n")
        http_port = free_port()
        # Ready needs partitions (a member holding none is not ready): the previous overlay's
        # aggregator left the same group, so a short session lets this one join at once.
        agg_cfg = cluster.write_config(f"aggregator-{label}.yaml", f"""
kafka:
  bootstrap_file: {cluster.bootstrap_file}
  properties:
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
consumer:
  group_id: {agg_eff['consumer']['group_id']}
redis:
  host: 127.0.0.1
  port: {port}
  password_file: {pw_file}
http:
  host: 127.0.0.1
  port: {http_port}
""")
        agg = cluster.spawn(f"aggregator-{label}",
                            [os.path.join(cluster.build_dir, "aggregator", "modelwatch-aggregator"),
                             "--config", agg_cfg])
        try:
            wait_for(lambda: http_get(http_port, "/readyz")[0] == 200, 30,
                     "the aggregator to connect to Redis with the password file")
            tap.check(True, f"{label}: an aggregator reading the password from a file becomes "
                      f"ready against that Redis")
        except TestFailure as e:
            tap.check(False, f"{label}: an aggregator reading the password from a file becomes "
                      f"ready against that Redis", str(e) + cluster.log_of(agg)[-2000:])
        cluster.stop(agg)
    finally:
        cluster.stop(proc)


def check_monitoring(tap, label, objs, work):
    sms = find(objs, "ServiceMonitor")
    rules = find(objs, "PrometheusRule")
    if not sms and not rules:
        tap.check(True, f"{label}: no Prometheus Operator objects rendered")
        return
    svc = one(objs, "Service", "modelwatch-aggregator")
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    tap.check(any(selects(sm["spec"]["selector"], svc["metadata"].get("labels", {})) and
                  any(e.get("port") in port_names for e in sm["spec"]["endpoints"])
                  for sm in sms),
              f"{label}: a ServiceMonitor selects the aggregator's Service and port")
    tap.check(len(rules) == 1, f"{label}: one PrometheusRule")
    if not rules:
        return
    d = tempfile.mkdtemp(prefix="mw-k8s-rules-", dir=work)
    with open(os.path.join(d, "rules.yaml"), "w") as f:
        yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}, f, sort_keys=False)
    promtool = shutil.which("promtool")
    if not promtool:
        raise TestFailure("promtool is not installed (deploy/local/install-deps.sh --test)")
    out = run_binary([promtool, "check", "rules", os.path.join(d, "rules.yaml")])
    tap.check(out.returncode == 0, f"{label}: promtool check rules passes the PrometheusRule's "
              f"groups", out.stdout + out.stderr)
    shutil.copy(os.path.join(HERE, "k8s_prometheusrule_test.yaml"), d)
    out = run_binary([promtool, "test", "rules", "k8s_prometheusrule_test.yaml"], cwd=d)
    tap.check(out.returncode == 0, f"{label}: promtool test rules: the burn-rate rules record "
              f"and alert as the SRE workbook's table says", out.stdout + out.stderr)
    names = {r.get("record") or r.get("alert") for g in rules[0]["spec"]["groups"]
             for r in g["rules"]}
    tap.check({f"modelwatch:error_budget_burn:rate{w}" for w in
               ("5m", "30m", "1h", "2h", "6h", "1d", "3d")} <= names and
              {"ModelwatchErrorBudgetBurnFast", "ModelwatchErrorBudgetBurnMedium",
               "ModelwatchErrorBudgetBurnSlow", "ModelwatchErrorBudgetBurnVerySlow"} <= names,
              f"{label}: burn rates recorded over every window, alerts for every tier")
    missing = []
    for g in rules[0]["spec"]["groups"]:
        for r in g["rules"]:
            url = r.get("annotations", {}).get("runbook_url")
            if url:
                page = url.split("/deploy/runbooks/")[-1]
                if not os.path.exists(os.path.join(SOURCE_ROOT, "deploy", "runbooks", page)):
                    missing.append(url)
    tap.check(not missing, f"{label}: every runbook_url names a page of deploy/runbooks",
              str(missing))


def managed_example(work):
    """The managed Kafka and Redis overlay of deploy/k8s/README.md, written out as the README
    says: its kustomization.yaml and the files it names."""
    with open(os.path.join(K8S, "README.md")) as f:
        text = f.read()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```", text, re.S)
    if not blocks:
        raise TestFailure("deploy/k8s/README.md has no <!-- file: ... --> blocks for the "
                          "managed example")
    for rel, body in blocks:
        path = os.path.join(K8S, rel)
        if not os.path.abspath(path).startswith(os.path.join(K8S, "overlays", "managed")):
            raise TestFailure(f"README block writes outside overlays/managed: {rel}")
    # Written next to the other overlays (its ../../base must resolve), under a hidden name
    # that the overlay glob skips, and removed right after rendering.
    target = tempfile.mkdtemp(prefix=".test-managed-", dir=os.path.join(K8S, "overlays"))
    os.rmdir(target)
    return [(os.path.relpath(os.path.join(target, os.path.relpath(rel, "overlays/managed")), K8S),
             body) for rel, body in blocks], target


def main(tap, cluster):
    build_dir = cluster.build_dir
    work = tempfile.mkdtemp(prefix="mw-k8s-", dir=cluster.dir)
    rules_dir = tempfile.mkdtemp(prefix="rules-", dir=work)
    overlays = sorted(os.path.basename(p) for p in glob.glob(os.path.join(K8S, "overlays", "*"))
                      if os.path.exists(os.path.join(p, "kustomization.yaml")))
    tap.check({"dev", "prod"} <= set(overlays), "overlays dev and prod exist", str(overlays))
    version = run_binary(["kubectl", "version", "--client"]).stdout
    tap.check("Kustomize Version: v5" in version, "kubectl embeds kustomize v5", version)

    targets = [(o, os.path.join(K8S, "overlays", o)) for o in overlays]
    blocks, managed_dir = managed_example(work)
    targets.append(("managed (README)", managed_dir))
    for label, path in targets:
        created = False
        try:
            if path == managed_dir:
                for rel, body in blocks:
                    p = os.path.join(K8S, rel)
                    os.makedirs(os.path.dirname(p), exist_ok=True)
                    with open(p, "w") as f:
                        f.write(body)
                created = True
            objs = render(path)
        finally:
            if created:
                shutil.rmtree(managed_dir, ignore_errors=True)
        tap.check(True, f"{label}: kubectl kustomize renders {len(objs)} objects")
        namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
        tap.check(len(namespaces) == 1 and None not in namespaces,
                  f"{label}: every object is in one namespace", str(namespaces))
        check_hardening(tap, label, objs)
        check_secrets(tap, label, objs)
        agent_cfg = check_model_pod(tap, label, objs, build_dir, work)
        agg_eff, _ = check_aggregator(tap, label, objs, build_dir, work, rules_dir)
        check_kafka(tap, label, objs, agent_cfg, agg_eff)
        check_redis(tap, label, objs, agg_eff, cluster, work)
        check_monitoring(tap, label, objs, work)
        if label.startswith("managed"):
            tap.check(not find(objs, "Kafka") and not find(objs, "StatefulSet") and
                      agg_eff["redis"]["host"] != "modelwatch-redis",
                      f"{label}: no Kafka or Redis in the cluster; the aggregator points at the "
                      f"managed ones", str(agg_eff["redis"]))


if __name__ == "__main__":
    run(main)
