"""Shared fixtures for statherd's end-to-end tests (stdlib only, run with /usr/bin/python3).

Everything here starts real processes on loopback (carbon-cache lives in carbon_fixture.py):
statherd-server, statherd-agent and Python mmstats writers. Each process logs to a file in the
test's temp dir; the logs are printed when a test fails. Synchronisation is always by polling a
condition (a port, a file, an HTTP answer, a whisper sum), never by a fixed sleep.

Environment:
  STATHERD_BIN_DIR     cmake build dir holding statherd-agent and statherd-server
  STATHERD_SOURCE_DIR  repository root (for clients/python/mmstats_writer.py)
  STATHERD_KEEP_TMP=1  keep the temp dirs for inspection
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("STATHERD_SOURCE_DIR", os.path.normpath(os.path.join(HERE, "..", "..")))
WRITER_SCRIPT = os.path.join(SOURCE_DIR, "clients", "python", "mmstats_writer.py")
TOKEN = "integration-test-token-0123456789"


def bin_dir():
    return os.environ.get("STATHERD_BIN_DIR", os.path.join(SOURCE_DIR, "build"))


def binary(name):
    return os.path.join(bin_dir(), name)


# ---------------------------------------------------------------------------------------------
# Waiting


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout, interval=0.05, what=None):
    """Polls predicate() until it returns a truthy value, which is returned.

    Exceptions raised by predicate count as "not yet" (the last one is reported on timeout).
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what or predicate}{detail}")
        time.sleep(interval)


_PORTS_GIVEN = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed
    out before. Two calls made before either port is bound (a test picks statherd-server's
    port, then Prometheus') could otherwise both get the port the kernel just released: a CI
    run of test_prometheus_restarts had both on one port and the server refused to start."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("free_port: no port on 127.0.0.1 that was not handed out already")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(host, port, timeout, process=None):
    def ready():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.returncode} "
                                 f"before opening {host}:{port}\n{process.log_tail()}")
        return port_open(host, port)
    return wait_for(ready, timeout, what=f"{host}:{port} to accept connections")


# ---------------------------------------------------------------------------------------------
# HTTP


def http_request(url, data=None, headers=None, method=None, timeout=10):
    """Returns (status, body bytes); HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def http_get_json(url, timeout=10):
    status, body = http_request(url, timeout=timeout)
    if status != 200:
        raise AssertionError(f"GET {url} -> {status}: {body[:500]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------------------------
# Processes


class ManagedProcess:
    """A child process whose stdout/stderr go to files in the test's temp dir."""

    def __init__(self, name, argv, workdir, env=None, stdout_to_file=True):
        self.name = name
        self.argv = list(argv)
        self.stdout_path = os.path.join(workdir, f"{name}.stdout")
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        full_env = dict(os.environ)
        for k, v in (env or {}).items():  # None: removed from the child's environment
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        # Append, so a restarted process keeps the earlier run's log in the same file.
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            header = f"==== start {' '.join(self.argv)}\n".encode()
            err.write(header)
            err.flush()
            self.popen = subprocess.Popen(self.argv, stdout=out if stdout_to_file else subprocess.DEVNULL,
                                          stderr=err, env=full_env, cwd=workdir,
                                          start_new_session=True)
        self.pid = self.popen.pid

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def running(self):
        return self.popen.poll() is None

    def kill(self):
        """SIGKILL, then reap."""
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout=15):
        """SIGTERM; SIGKILL if still alive after timeout. Returns the exit code."""
        if self.running():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"{time.strftime('%H:%M:%S')} {self.name} (pid {self.pid}) still running "
                      f"{timeout} s after SIGTERM: SIGKILL", file=sys.stderr)
                self.killed_at_stop = True  # the test's cleanup then shows and keeps its logs
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        return self.popen.returncode

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def read_stderr(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def read_stdout(self):
        with open(self.stdout_path, "r", errors="replace") as f:
            return f.read()

    def log_tail(self, limit=6000):
        parts = []
        for path in (self.stderr_path, self.stdout_path):
            try:
                with open(path, "r", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if text:
                parts.append(f"--- {os.path.basename(path)} (last {limit} chars) ---\n{text[-limit:]}")
        return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# statherd daemons


def test_has_failed(testcase):
    """True when `testcase` has already failed or errored (its cleanups run after that)."""
    result = getattr(getattr(testcase, "_outcome", None), "result", None)
    if result is None:
        return True
    return any(test is testcase for test, _ in list(result.failures) + list(result.errors))


def failure_text(testcase):
    """The traceback text of `testcase`'s failure or error, when the result holds one."""
    try:
        result = testcase._outcome.result  # pylint: disable=protected-access
        texts = [text for test, text in list(result.failures) + list(result.errors)
                 if test is testcase]
    except Exception:  # noqa: BLE001 - a diagnostic must not break the cleanup
        return "(no test result to show the failure from)"
    return "\n".join(texts) or "(not in the result: a subTest's, or the process stop's)"


class TempFilesMixin:
    """A temp dir of the test's own (self.tmp), a token file in it (self.token), and write()."""

    def make_temp_files(self, prefix, token):
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.token = self.write("token", token + "\n")

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def write_token_file(workdir, token=TOKEN):
    path = os.path.join(workdir, "token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


class StatherdServer:
    def __init__(self, workdir, token_file, graphite="-", interval="1s", port=None,
                 state_dir=None, extra_args=(), env=None):
        self.workdir = workdir
        self.env = env  # added to (None values: removed from) the server's environment
        self.port = port or free_port()
        self.token_file = token_file
        self.graphite = graphite
        self.interval = interval
        self.state_dir = state_dir or os.path.join(workdir, "server-state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.extra_args = list(extra_args)
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        return [binary("statherd-server"), "--listen", f"127.0.0.1:{self.port}",
                "--token-file", self.token_file, "--interval", self.interval,
                "--state-dir", self.state_dir, "--graphite", self.graphite] + self.extra_args

    def start(self, timeout=30):
        self.process = ManagedProcess("statherd-server", self.argv(), self.workdir, env=self.env)
        wait_for(self.healthy, timeout, what="statherd-server /healthz")
        return self

    def healthy(self):
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"statherd-server exited with {self.process.returncode}\n"
                                 f"{self.process.log_tail()}")
        status, _ = http_request(self.url + "/healthz", timeout=2)
        return status == 200

    def stop(self):
        if self.process is not None:
            return self.process.stop()

    def kill(self):
        self.process.kill()

    def get_json(self, path):
        return http_get_json(self.url + path)

    def render(self, target, since="-10min"):
        from urllib.parse import quote
        return self.get_json(f"/render?target={quote(target)}&from={quote(since)}&format=json")

    def find(self, query):
        from urllib.parse import quote
        return self.get_json(f"/metrics/find?query={quote(query)}")

    def sources_text(self):
        status, body = http_request(self.url + "/api/v1/sources", timeout=5)
        return body.decode(errors="replace") if status == 200 else ""


class StatherdAgent:
    def __init__(self, workdir, server_url, token_file, globs, counter_patterns=(),
                 host="itest-host", interval="1s", spool_dir=None, extra_args=()):
        self.workdir = workdir
        self.server_url = server_url
        self.token_file = token_file
        self.globs = list(globs)
        self.counter_patterns = list(counter_patterns)
        self.host = host
        self.interval = interval
        self.spool_dir = spool_dir or os.path.join(workdir, "agent-spool")
        os.makedirs(self.spool_dir, exist_ok=True)
        self.extra_args = list(extra_args)
        self.process = None

    def argv(self):
        argv = [binary("statherd-agent"), "--server", self.server_url,
                "--token-file", self.token_file, "--interval", self.interval,
                "--host", self.host, "--spool-dir", self.spool_dir]
        for g in self.globs:
            argv += ["--mmstats-glob", g]
        for p in self.counter_patterns:
            argv += ["--counter-pattern", p]
        return argv + self.extra_args

    def start(self):
        self.process = ManagedProcess("statherd-agent", self.argv(), self.workdir)
        return self

    def stop(self):
        if self.process is not None:
            return self.process.stop()

    def kill(self):
        self.process.kill()


def run_agent_once(globs, counter_patterns=(), timeout=60):
    """statherd-agent --once: returns (exit code, [parsed JSON objects], stderr text)."""
    argv = [binary("statherd-agent"), "--once"]
    for g in globs:
        argv += ["--mmstats-glob", g]
    for p in counter_patterns:
        argv += ["--counter-pattern", p]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout)
    lines = [line for line in proc.stdout.decode().splitlines() if line.strip()]
    return proc.returncode, [json.loads(line) for line in lines], proc.stderr.decode(errors="replace")
