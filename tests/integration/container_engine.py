"""podman for the image and package tests (test_image.py, test_package.py).

`ensure_engine()` runs scripts/container-setup.sh (idempotent: packages, containers.conf, the
locally debootstrapped base image). If it fails, the calling test FAILS with the script's
reason: a machine that cannot run containers is an error here, never a skip.

Every podman call goes through `podman()`, with `--runtime runc` (crun refuses this kernel's
cgroups); containers run with `--network host` and listen on free loopback ports. Names are
unique per test process (`unique_name`), and `Containers.cleanup()` removes every container a
test started, whatever happened.
"""

import itertools
import os
import shutil
import subprocess
import time

import harness

SETUP_SCRIPT = os.path.join(harness.SOURCE_DIR, "scripts", "container-setup.sh")
BASE_IMAGE = "localhost/debian:bookworm"
_counter = itertools.count(1)
_engine_ready = None


def podman(*args, check=True, timeout=600, input_bytes=None):
    """Runs `podman --runtime runc ARGS`; returns the CompletedProcess (text output)."""
    argv = ["podman", "--runtime", "runc", *args]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout,
                          input=input_bytes)
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def ensure_engine():
    """Runs scripts/container-setup.sh once per process; raises AssertionError with its reason."""
    global _engine_ready
    if _engine_ready is None:
        started = time.monotonic()
        proc = subprocess.run([SETUP_SCRIPT], capture_output=True, text=True, timeout=1200)
        _engine_ready = (proc.returncode, proc.stderr)
        print(f"container-setup.sh: exit {proc.returncode} in {time.monotonic() - started:.1f} s",
              flush=True)
    code, stderr = _engine_ready
    if code != 0:
        raise AssertionError("the container engine is not usable on this machine "
                             f"(scripts/container-setup.sh exited {code}):\n{stderr[-4000:]}")
    if shutil.which("podman") is None:
        raise AssertionError("podman missing after scripts/container-setup.sh")


def unique_name(what):
    return f"statherd-itest-{what}-{os.getpid()}-{next(_counter)}"


class Containers:
    """The containers one test started; cleanup() stops and removes them all."""

    def __init__(self):
        self.names = []

    def run(self, name, *args):
        """podman run -d --name NAME --network host ARGS; returns the name."""
        self.names.append(name)
        podman("run", "-d", "--name", name, "--network", "host", *args, timeout=120)
        return name

    def logs(self, name):
        proc = podman("logs", name, check=False, timeout=60)
        return f"--- podman logs {name} ---\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"

    def host_pid(self, name):
        return int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def running(self, name):
        proc = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
        return proc.stdout.strip() == "true"

    def cleanup(self):
        if self.names:
            # --volumes: the image's VOLUME /etc/statherd gives each container an anonymous one.
            podman("rm", "--force", "--volumes", "--time", "2", *self.names, check=False,
                   timeout=120)
            self.names = []


def remove_compose_project(project):
    """Removes the containers, volumes and networks podman-compose made for project."""
    label = f"label=io.podman.compose.project={project}"
    for kind, remove in (("ps", ("rm", "--force", "--volumes")), ("volume", ("volume", "rm", "--force")),
                         ("network", ("network", "rm", "--force"))):
        listing = ("ps", "-a", "-q") if kind == "ps" else (kind, "ls", "-q")
        names = podman(*listing, "--filter", label, check=False).stdout.split()
        if names:
            podman(*remove, *names, check=False, timeout=120)


def process_uid(host_pid):
    """The real uid of a process on this host (a container's process, seen from outside)."""
    with open(f"/proc/{host_pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {host_pid}")
