"""The container image, built and run with podman (issue #12).

setUpClass makes the engine usable (scripts/container-setup.sh: a failure there FAILS the test
with the machine's reason) and builds the Dockerfile once (`--format docker`, so HEALTHCHECK is
kept; podman's layer cache makes an unchanged rebuild quick). It prints the image size.

- server and agent containers (host network, free loopback ports, a token) against Python
  writers on this host (an mmstats v1 writer and a statherd v2 writer; stat files through a
  read-only bind mount): every increment arrives at the server's JSON API, the healthcheck
  passes (`podman healthcheck run` and the script in the container), both daemons run as
  non-root (their uid read from /proc on this host);
- deploy/compose.yaml: `podman-compose config` validates it; its statherd services (token,
  server, agent) are started with podman-compose from a copy that only swaps the networking to
  host mode on free ports; Graphite and Prometheus are left out (their images cannot be pulled
  here, no registry is reachable) and the test prints so.
Every container (and compose volume) it starts is removed.
"""

import json
import os
import re
import subprocess
import tempfile
import time
import unittest
from urllib.parse import quote

import container_engine
import harness
import mmstats_v1
import pipeline
from container_engine import podman

ROOT = harness.SOURCE_DIR
IMAGE = "localhost/statherd:itest"
COMPOSE = os.path.join(ROOT, "deploy", "compose.yaml")
TOKEN_IN_CONTAINER = "/run/statherd-token"
LEFT_OUT = {
    "graphite": "image graphiteapp/graphite-statsd cannot be pulled here (no registry reachable)",
    "prometheus": "image prom/prometheus cannot be pulled here (no registry reachable)",
}

# A statherd v2 writer: counts 250 requests, sets a gauge, says where its file is, then waits.
V2_WRITER = """
import signal, sys, statherd
requests = statherd.Counter("requests", "requests served")
queue = statherd.Gauge("queue_depth")
for _ in range(250):
    requests.inc()
queue.set(42)
with open(sys.argv[1], "w") as f:
    f.write(statherd.stat_file_path())
signal.pause()
"""

PODMAN_FOR_COMPOSE = """#!/usr/bin/python3
import os, shutil, sys
args = sys.argv[1:]
if args[:1] == ["run"] and "--network" in args and args[args.index("--network") + 1] == "host":
    kept, skip = [], 0
    for i, arg in enumerate(args):
        if skip:
            skip -= 1
        elif arg in ("--net", "--network-alias") and i + 1 < len(args):
            skip = 1
        else:
            kept.append(arg)
    args = kept
podman = shutil.which("podman")
os.execv(podman, [podman, "--runtime", "runc", *args])
"""


def render_sum(url, target):
    query = f"/render?target={quote(target)}&from=-10min&format=json"
    series = harness.http_get_json(url + query)
    return sum(v for s in series for v, _ in s["datapoints"] if v is not None)


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        container_engine.ensure_engine()
        started = time.monotonic()
        podman("build", "--network", "host", "--format", "docker", "--layers", "-t", IMAGE,
               "-f", os.path.join(ROOT, "Dockerfile"), ROOT, timeout=1500)
        size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
        print(f"image {IMAGE}: {size / 1e6:.1f} MB, built in {time.monotonic() - started:.0f} s",
              flush=True)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-image-")
        self.workdir = self._tmp.name
        self.stats_dir = os.path.join(self.workdir, "stats")
        os.makedirs(self.stats_dir)
        for path in (self.workdir, self.stats_dir):
            os.chmod(path, 0o755)  # the containers' statherd user reads through the bind mounts
        # The token, readable by the containers' statherd user (a test token, nothing secret).
        self.token_file = harness.write_token_file(self.workdir)
        os.chmod(self.token_file, 0o644)
        self.containers = container_engine.Containers()
        self.processes = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        if harness.test_has_failed(self):
            for name in self.containers.names:
                print(self.containers.logs(name))
            for process in self.processes:
                print(process.log_tail())
        for process in self.processes:
            process.stop()
        self.containers.cleanup()
        self._tmp.cleanup()

    def write_sentinel(self):
        pid = os.getpid()
        path = os.path.join(self.stats_dir, f"{pipeline.SENTINEL_APP}-{pid}-{pid}.mmstats")
        mmstats_v1.write_file(path, [("up", "Q", 1, True)])

    def wait_healthy(self, url, container):
        def healthy():
            if not self.containers.running(container):
                raise AssertionError(f"{container} stopped\n{self.containers.logs(container)}")
            return harness.http_request(url + "/healthz", timeout=2)[0] == 200
        harness.wait_for(healthy, 60, interval=0.2, what=f"{container} /healthz")

    def wait_first_batch(self, url, agent):
        def arrived():
            if not self.containers.running(agent):
                raise AssertionError(f"{agent} stopped\n{self.containers.logs(agent)}")
            return bool(harness.http_get_json(url + f"/metrics/find?query=statherd.{pipeline.SENTINEL_APP}.*"))
        harness.wait_for(arrived, 60, interval=0.2, what=f"{agent}'s first batch at the server")

    def start_server(self, port):
        name = self.containers.run(
            container_engine.unique_name("server"),
            "-v", f"{self.token_file}:{TOKEN_IN_CONTAINER}:ro",
            "--health-cmd", f"/usr/local/bin/statherd-healthcheck 127.0.0.1:{port}",
            "--health-interval", "disable",
            IMAGE, "statherd-server", "--config", "/etc/statherd/server.yaml",
            "--listen", f"127.0.0.1:{port}", "--state-dir", "/var/lib/statherd",
            "--token-file", TOKEN_IN_CONTAINER, "--interval", "1s")
        return name

    def start_agent(self, url):
        return self.containers.run(
            container_engine.unique_name("agent"), "--pid", "host",
            "-v", f"{self.token_file}:{TOKEN_IN_CONTAINER}:ro",
            "-v", f"{self.stats_dir}:/stats:ro",
            IMAGE, "statherd-agent", "--server", url, "--token-file", TOKEN_IN_CONTAINER,
            "--interval", "1s", "--host", "itest-image",
            "--spool-dir", "/var/lib/statherd-agent/spool",
            "--mmstats-glob", "/stats/*.mmstats", "--v2-glob", "/stats/*.statherd")

    def start_v2_writer(self):
        path_file = os.path.join(self.workdir, "v2.path")
        writer = harness.ManagedProcess(
            "v2-writer", [harness.PYTHON, "-c", V2_WRITER, path_file], self.workdir,
            env={"PYTHONPATH": os.path.join(ROOT, "clients", "python"),
                 "STATHERD_DIR": self.stats_dir, "STATHERD_APP": "imgv2"})
        self.processes.append(writer)
        harness.wait_for(lambda: os.path.exists(path_file) or writer.poll() is not None, 30,
                         what="the v2 writer's stat file")
        self.assertIsNone(writer.poll(), writer.log_tail())
        return writer

    def test_server_and_agent_containers_with_host_writers(self):
        port = harness.free_port()
        url = f"http://127.0.0.1:{port}"
        server = self.start_server(port)
        self.wait_healthy(url, server)
        self.write_sentinel()
        agent = self.start_agent(url)
        self.wait_first_batch(url, agent)

        v1 = pipeline.Writer(self.workdir, self.stats_dir, "imgv1", 0, counters=2, rate=100,
                             duration=3)
        self.processes.append(v1.process)
        self.start_v2_writer()
        v1.wait_done(timeout=60)
        expected = {f"statherd.imgv1.{name}.count": total for name, total in v1.totals().items()}
        expected["statherd.imgv2.requests.count"] = 250
        self.assertTrue(all(v > 0 for v in expected.values()), expected)
        for target, total in expected.items():
            harness.wait_for(lambda: render_sum(url, target) == total, 60, interval=0.5,
                             what=f"{target} to sum to {total} (now {render_sum(url, target)})")
        gauge = harness.http_get_json(
            url + "/render?target=statherd.imgv2.queue_depth.max&from=-10min&format=json")
        self.assertIn(42, [v for s in gauge for v, _ in s["datapoints"]], gauge)

        for name in (server, agent):
            uid = container_engine.process_uid(self.containers.host_pid(name))
            self.assertNotEqual(uid, 0, f"{name} runs as root")
            self.assertEqual(podman("exec", name, "id", "-un").stdout.strip(), "statherd")
        check = podman("exec", server, "/usr/local/bin/statherd-healthcheck", f"127.0.0.1:{port}",
                       check=False)
        self.assertEqual(check.returncode, 0, check.stderr)
        health = podman("healthcheck", "run", server, check=False, timeout=60)
        self.assertEqual(health.returncode, 0, health.stdout + health.stderr)

    def test_image_config(self):
        image = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        self.assertEqual(image["Config"].get("User"), "statherd")
        self.assertIn("/etc/statherd", image["Config"].get("Volumes", {}))
        # Kept only in the docker image format (an OCI image drops HEALTHCHECK).
        self.assertEqual(image["Healthcheck"]["Test"],
                         ["CMD", "/usr/local/bin/statherd-healthcheck", "127.0.0.1:8470"])

    def compose(self, project, *args, check=True):
        argv = ["podman-compose", "--podman-path", self.podman_for_compose(), "-p", project, *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def podman_for_compose(self):
        """podman-compose 1.0.3 adds `--net <project>_default --network-alias <service>` to
        every `podman run`, even with network_mode: host, and podman refuses both at once. This
        wrapper drops those two options when --network host is given (and adds --runtime runc)."""
        path = os.path.join(self.workdir, "podman-for-compose")
        with open(path, "w") as f:
            f.write(PODMAN_FOR_COMPOSE)
        os.chmod(path, 0o755)
        return path

    def host_network_copy(self, port):
        """deploy/compose.yaml's statherd services with host networking on a free port."""
        import yaml  # Debian's python3-yaml
        with open(COMPOSE) as f:
            compose = yaml.safe_load(f)
        services = {name: compose["services"][name] for name in ("token", "server", "agent")}
        for service in services.values():
            service.pop("build", None)
            service.pop("ports", None)
            service.pop("hostname", None)  # the host's UTS namespace comes with host networking
            service["image"] = IMAGE
            service["network_mode"] = "host"
        server = services["server"]
        server["command"] = [a.replace("0.0.0.0:8470", f"127.0.0.1:{port}") for a in
                             server["command"] if not a.startswith("--graphite=")] + ["--interval=1s"]
        server["depends_on"] = {k: v for k, v in server["depends_on"].items() if k in services}
        agent = services["agent"]
        agent["command"] = [a.replace("http://server:8470", f"http://127.0.0.1:{port}")
                            for a in agent["command"]] + ["--interval=1s", "--host=itest-compose"]
        agent["volumes"] = [v.replace("/tmp:/host-tmp", f"{self.stats_dir}:/host-tmp")
                            for v in agent["volumes"]]
        compose["services"] = services
        compose["volumes"] = {k: v for k, v in compose["volumes"].items()
                              if k in ("statherd-etc", "server-state", "agent-state")}
        path = os.path.join(self.workdir, "compose.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(compose, f)
        return path

    def test_compose_file_and_its_statherd_services(self):
        # Debian's podman-compose (1.0.3) has no `config` command: `--dry-run up` is its check.
        # It parses the file, orders the services by depends_on and prints each podman run
        # (it does create the project's volumes and network: removed below).
        import yaml
        with open(COMPOSE) as f:
            self.assertEqual(sorted(yaml.safe_load(f)["services"]),
                             ["agent", "graphite", "prometheus", "server", "token"])
        dry = container_engine.unique_name("compose-dry")
        try:
            checked = self.compose(dry, "--dry-run", "-f", COMPOSE, "up", "-d", "--no-build")
        finally:
            container_engine.remove_compose_project(dry)
        runs = re.findall(rf"^\S*podman\S* run --name={re.escape(dry)}_(\w+)_1 ", checked.stdout,
                          re.MULTILINE)
        self.assertEqual(sorted(runs), ["agent", "graphite", "prometheus", "server", "token"],
                         checked.stdout[-3000:])
        self.assertLess(runs.index("token"), runs.index("server"))
        self.assertLess(runs.index("server"), runs.index("agent"))
        for name, why in LEFT_OUT.items():
            print(f"compose: left out service {name!r}: {why}", flush=True)

        project = container_engine.unique_name("compose")
        port = harness.free_port()
        url = f"http://127.0.0.1:{port}"
        copy = self.host_network_copy(port)
        self.write_sentinel()
        try:
            self.compose(project, "-f", copy, "up", "-d")
            server, agent = f"{project}_server_1", f"{project}_agent_1"
            self.wait_healthy(url, server)
            self.wait_first_batch(url, agent)
            for name in (server, agent):
                uid = container_engine.process_uid(self.containers.host_pid(name))
                self.assertNotEqual(uid, 0, f"{name} runs as root")
        except BaseException:
            for service in ("token", "server", "agent"):
                print(self.containers.logs(f"{project}_{service}_1"))
            raise
        finally:
            self.compose(project, "-f", copy, "down", "-v", check=False)
            container_engine.remove_compose_project(project)


if __name__ == "__main__":
    unittest.main()
