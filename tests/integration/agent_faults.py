"""Helpers for the agent's fault tests: an agent with Kafka properties of its own (and, to
make its disk "full", a file size limit), and the /metrics families the loss accounting is
read from."""
import os
import resource
import signal
import subprocess
import threading

from harness import free_port, http_get, wait_for


def start_agent(cluster, name="agent", agent_id="agent-1", kafka_properties=None, extra="",
                spool_dir=None, spool_options="", file_size_limit=None, endpoint=None):
    """Like Cluster.start_agent, with librdkafka properties in the kafka section. With
    file_size_limit the agent cannot grow any file past that many bytes (RLIMIT_FSIZE, SIGXFSZ
    ignored): writes fail with EFBIG as on a full disk. Its log then goes through a pipe, which
    the limit does not cut."""
    port = free_port()
    endpoint = endpoint or f"ipc://{cluster.dir}/{name}.sock"
    spool_dir = spool_dir or os.path.join(cluster.dir, f"{name}-spool")
    props = "".join(f"    {k}: \"{v}\"\n" for k, v in (kafka_properties or {}).items())
    cfg = cluster.write_config(f"{name}.yaml", f"""
agent_id: {agent_id}
intake:
  endpoint: "{endpoint}"
kafka:
  bootstrap_file: {cluster.bootstrap_file}
{"  properties:" + chr(10) + props if props else ""}spool:
  dir: {spool_dir}
  fsync: false
{spool_options}http:
  port: {port}
{extra}
""")
    argv = [cluster.binary("agent/modelwatch-agent"), "--config", cfg]
    if file_size_limit is None:
        proc = cluster.spawn(name, argv)
    else:
        proc = spawn_limited(cluster, name, argv, file_size_limit)
    proc.http_port = port
    proc.endpoint = endpoint
    proc.spool_dir = spool_dir
    wait_for(lambda: http_get(port, "/healthz")[0] == 200, 15, f"{name} /healthz")
    return proc


def spawn_limited(cluster, name, argv, file_size_limit):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    log_path = os.path.join(cluster.dir, f"{name}.log")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=cluster.dir, start_new_session=True, preexec_fn=limit)

    def copy():
        with open(log_path, "ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
    threading.Thread(target=copy, daemon=True).start()
    proc.mw_name = name
    proc.mw_log = log_path
    cluster.procs.append(proc)
    return proc


def family(m, name):
    """Sum of every sample of one metric family (all label sets)."""
    return sum(v for k, v in m.items() if k == name or k.startswith(name + "{"))


def sample(m, name, **labels):
    key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return m.get(key, 0)


def modelwatch_module(cluster):
    """The Python binding (agent/client/python) over the build's libmodelwatch."""
    import sys
    os.environ["MODELWATCH_LIB"] = os.path.join(cluster.build_dir, "agent", "client",
                                                "libmodelwatch.so")
    py_dir = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                           "..", "agent", "client", "python"))
    if py_dir not in sys.path:
        sys.path.insert(0, py_dir)
    import modelwatch
    return modelwatch
