"""Dockerfile, deploy/compose.yaml and the image's healthcheck, checked without a Docker engine.

- hadolint when it is installed (Debian bookworm does not package it), else our own lint:
  every COPY source exists in the build context and is not excluded by .dockerignore, every
  COPY --from names an earlier stage, every package an `apt-get install` names exists in the
  Debian package index (`apt-cache show`; the base images are Debian bookworm, like this host),
  the runtime stage runs as a non-root user, has a HEALTHCHECK and /etc/statherd as a VOLUME.
- deploy/healthcheck.sh (the image's HEALTHCHECK) run against a real statherd-server: 0 when it
  answers /healthz, 1 with a reason when nothing listens.
- compose.yaml parses (python3-yaml), has the expected services, and its references resolve.
"""

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import harness

ROOT = harness.SOURCE_DIR
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
COMPOSE = os.path.join(ROOT, "deploy", "compose.yaml")
HEALTHCHECK = os.path.join(ROOT, "deploy", "healthcheck.sh")


def dockerfile_instructions(path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if pending and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            full = (pending + line).strip()
            pending = ""
            word, _, rest = full.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def stages(instructions):
    """[(name or None, base image, [(INSTRUCTION, args)...])] per FROM."""
    result = []
    for word, args in instructions:
        if word == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append((name, parts[0], []))
        elif result:
            result[-1][2].append((word, args))
    return result


def dockerignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def apt_packages(run_args):
    """Package names of every `apt-get install` in a RUN (options and local .deb paths skipped)."""
    packages = []
    for command in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(command)
        if len(words) < 2 or words[0] != "apt-get" or "install" not in words:
            continue
        for word in words[words.index("install") + 1:]:
            if not word.startswith("-") and "/" not in word:
                packages.append(word)
    return packages


class DockerfileTest(unittest.TestCase):
    def setUp(self):
        self.instructions = dockerfile_instructions(DOCKERFILE)
        self.stages = stages(self.instructions)

    def test_hadolint_if_installed(self):
        hadolint = shutil.which("hadolint")
        if hadolint is None:
            self.skipTest("hadolint is not installed (not packaged in Debian bookworm); the "
                          "other tests of this file are the lint")
        proc = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)

    def test_builder_and_small_runtime_stage(self):
        self.assertGreaterEqual(len(self.stages), 2)
        builder, runtime = self.stages[0], self.stages[-1]
        self.assertTrue(builder[1].startswith("debian:bookworm"), builder[1])
        self.assertEqual(runtime[1], "debian:bookworm-slim")
        self.assertIsNotNone(builder[0], "the builder stage needs a name for COPY --from")

    def test_every_copy_source_exists_in_the_context(self):
        ignored = dockerignore_patterns()
        copies = [(w, a) for _, _, body in self.stages for w, a in body if w in ("COPY", "ADD")]
        self.assertTrue(copies)
        for word, args in copies:
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            if "--from=" in args:
                continue
            self.assertFalse(word == "ADD", "use COPY, not ADD")
            for source in parts[:-1]:
                path = os.path.join(ROOT, source)
                self.assertTrue(os.path.exists(path), f"COPY source {source} not in the repo")
                top = source.strip("/").split("/")[0]
                for pattern in ignored:
                    self.assertFalse(fnmatch.fnmatch(top, pattern),
                                     f"COPY source {source} is excluded by .dockerignore")

    def test_copy_from_names_an_earlier_stage(self):
        seen = []
        for name, _, body in self.stages:
            for word, args in body:
                m = re.search(r"--from=(\S+)", args)
                if word == "COPY" and m:
                    self.assertIn(m.group(1), seen, f"COPY --from={m.group(1)}: no such stage")
            seen.append(name)

    def test_every_apt_package_exists(self):
        packages = [p for _, _, body in self.stages for w, a in body if w == "RUN"
                    for p in apt_packages(a)]
        self.assertIn("cmake", packages)
        # One apt-cache call for all of them (each call loads the whole index).
        proc = subprocess.run(["apt-cache", "show", "--no-all-versions", *sorted(set(packages))],
                              capture_output=True, text=True, timeout=300)
        found = set(re.findall(r"^Package: (\S+)$", proc.stdout, re.MULTILINE))
        for package in packages:
            self.assertIn(package, found, f"apt package {package!r} not in the Debian index")

    def test_builder_installs_the_build_dependencies(self):
        # The build packages of scripts/install-deps.sh, minus the test-only ones, must be in
        # the builder stage (a new library in CMakeLists.txt must reach the Dockerfile too).
        with open(os.path.join(ROOT, "scripts", "install-deps.sh")) as f:
            text = f.read()
        build_list = re.search(r"^build_pkgs=\(([^)]*)\)", text, re.MULTILINE).group(1).split()
        test_only = {"libgtest-dev", "libgmock-dev", "libbenchmark-dev"}
        builder = [p for w, a in self.stages[0][2] if w == "RUN" for p in apt_packages(a)]
        self.assertEqual(sorted(set(build_list) - test_only - set(builder)), [])

    def test_runtime_is_non_root_with_healthcheck_and_config_volume(self):
        _, _, runtime = self.stages[-1]
        words = [w for w, _ in runtime]
        users = [a for w, a in runtime if w == "USER"]
        self.assertTrue(users and users[-1] not in ("root", "0"), users)
        self.assertLess(words.index("USER"), words.index("CMD"))
        health = [a for w, a in runtime if w == "HEALTHCHECK"]
        self.assertEqual(len(health), 1)
        self.assertIn("statherd-healthcheck", health[0])
        self.assertIn("/etc/statherd", " ".join(a for w, a in runtime if w == "VOLUME"))
        copies = " ".join(a for w, a in runtime if w == "COPY")
        self.assertIn("deploy/healthcheck.sh /usr/local/bin/statherd-healthcheck", copies)

    def test_runtime_installs_the_package_with_both_binaries(self):
        # The runtime installs the .deb built by cpack in the builder; the package holds both
        # daemons (test_install checks the package's contents).
        builder_runs = " ".join(a for w, a in self.stages[0][2] if w == "RUN")
        self.assertIn("cpack -G DEB", builder_runs)
        runtime_runs = " ".join(a for w, a in self.stages[-1][2] if w == "RUN")
        self.assertRegex(runtime_runs, r"apt-get install .*/tmp/statherd\.deb")


class HealthcheckScriptTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-healthcheck-")
        self.tmp = self._tmp.name
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.server.stop()
        self._tmp.cleanup()

    def run_check(self, target):
        return subprocess.run(["bash", HEALTHCHECK, target], capture_output=True, text=True,
                              timeout=30)

    def test_healthy_server_passes(self):
        token = harness.write_token_file(self.tmp)
        self.server = harness.StatherdServer(self.tmp, token).start()
        proc = self.run_check(f"127.0.0.1:{self.server.port}")
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_nothing_listening_fails_with_a_reason(self):
        port = harness.free_port()
        proc = self.run_check(f"127.0.0.1:{port}")
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"cannot connect to 127.0.0.1:{port}", proc.stderr)

    def test_script_passes_shellcheck_if_installed(self):
        if shutil.which("shellcheck") is None:
            self.skipTest("shellcheck not installed")
        proc = subprocess.run(["shellcheck", HEALTHCHECK], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout)


class ComposeFileTest(unittest.TestCase):
    def setUp(self):
        import yaml  # Debian's python3-yaml (scripts/install-deps.sh)
        with open(COMPOSE) as f:
            self.compose = yaml.safe_load(f)
        self.services = self.compose["services"]

    def test_expected_services(self):
        for name in ("server", "agent", "graphite", "prometheus"):
            self.assertIn(name, self.services)

    def test_build_context_and_local_files_exist(self):
        deploy = os.path.dirname(COMPOSE)
        builds = [s["build"] for s in self.services.values() if "build" in s]
        self.assertTrue(builds)
        for build in builds:
            context = os.path.normpath(os.path.join(deploy, build["context"]))
            self.assertTrue(os.path.exists(os.path.join(context, build["dockerfile"])))
        for name, service in self.services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("."):
                    self.assertTrue(os.path.exists(os.path.join(deploy, source)),
                                    f"{name}: bind mount {source} missing")
                elif not source.startswith("/"):
                    self.assertIn(source, self.compose.get("volumes", {}),
                                  f"{name}: named volume {source} not declared")

    def test_dependencies_name_services(self):
        for name, service in self.services.items():
            for dependency in service.get("depends_on", {}):
                self.assertIn(dependency, self.services, f"{name} depends on {dependency}")

    def test_agent_and_prometheus_point_at_the_server_port(self):
        server = " ".join(self.services["server"]["command"])
        port = re.search(r"--listen=\S+:(\d+)", server).group(1)
        agent = " ".join(self.services["agent"]["command"])
        self.assertIn(f"--server=http://server:{port}", agent)
        self.assertIn("--graphite=graphite:2003", server)
        with open(os.path.join(os.path.dirname(COMPOSE), "prometheus.yml")) as f:
            self.assertIn(f"server:{port}", f.read())
        self.assertIn(f"{port}:{port}", self.services["server"]["ports"])


if __name__ == "__main__":
    unittest.main()
