"""deploy/statherd-{agent,server}.service: `systemd-analyze verify` finds nothing, and the
hardening the docs promise is in place (docs/OPERATIONS.md, "systemd units").

`systemd-analyze verify` needs ExecStart's binary to exist, so it runs on temp copies whose
/usr/bin/statherd-* paths point at the built binaries (STATHERD_BIN_DIR). It exits 0 even for
unknown keys, and also prints warnings about unrelated units installed on the machine, so the
test fails on any line of its output that names one of our units.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

DEPLOY = os.path.join(harness.SOURCE_DIR, "deploy")
UNITS = ("statherd-agent.service", "statherd-server.service")


def read_unit(path):
    """{section: {key: [values...]}}; repeated keys keep every value (SystemCallFilter=)."""
    sections, current = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def yaml_scalar(path, key):
    """The value of a top-level `key: value` line of a config example (no YAML parser needed)."""
    with open(path) as f:
        for line in f:
            m = re.match(rf"^{re.escape(key)}:\s*(\S+)", line)
            if m:
                return m.group(1)
    raise AssertionError(f"{path} has no top-level {key}")


class SystemdUnitsTest(unittest.TestCase):
    def setUp(self):
        self.analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(self.analyze, "systemd-analyze missing: scripts/install-deps.sh all "
                                           "installs the systemd package")
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-units-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def copy_with_built_binaries(self, unit, extra_line=None):
        with open(os.path.join(DEPLOY, unit)) as f:
            text = f.read()
        for name in ("statherd-agent", "statherd-server"):
            built = harness.binary(name)
            self.assertTrue(os.access(built, os.X_OK), f"{built} not built")
            text = text.replace(f"/usr/bin/{name} ", f"{built} ")
        if extra_line:
            text = text.replace("[Service]\n", f"[Service]\n{extra_line}\n", 1)
        path = os.path.join(self.tmp, unit)
        with open(path, "w") as f:
            f.write(text)
        return path

    def verify(self, paths):
        """Lines of `systemd-analyze verify` output that concern our units, and the exit code."""
        proc = subprocess.run([self.analyze, "verify", *paths], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
        ours = [line for line in (proc.stdout + proc.stderr).splitlines()
                if "statherd" in line]
        return proc.returncode, ours

    def test_both_units_verify_without_warnings(self):
        paths = [self.copy_with_built_binaries(unit) for unit in UNITS]
        rc, ours = self.verify(paths)
        self.assertEqual(ours, [], "systemd-analyze verify complained about our units")
        self.assertEqual(rc, 0)

    def test_verify_catches_a_broken_unit(self):
        # The filter above must not be vacuous: a misspelt key in our unit is reported.
        path = self.copy_with_built_binaries(UNITS[0], extra_line="ProtectSystm=strict")
        _, ours = self.verify([path])
        self.assertTrue(any("ProtectSystm" in line for line in ours), ours)

    def test_agent_hardening(self):
        service = read_unit(os.path.join(DEPLOY, "statherd-agent.service"))["Service"]
        self.assertEqual(service["User"], ["statherd"])
        self.assertEqual(service["Group"], ["statherd"])
        self.assertEqual(service["ProtectSystem"], ["strict"])
        self.assertEqual(service["NoNewPrivileges"], ["yes"])
        # Reads other users' stat files: exactly one capability, nothing else.
        self.assertEqual(service["AmbientCapabilities"], ["CAP_DAC_READ_SEARCH"])
        self.assertEqual(service["CapabilityBoundingSet"], ["CAP_DAC_READ_SEARCH"])
        # The writers' stat files are in the real /tmp.
        self.assertNotIn("PrivateTmp", service)
        self.assertIn("@system-service", service["SystemCallFilter"])
        self.assertIn("AF_INET", service["RestrictAddressFamilies"][0].split())
        self.assertEqual(service["ExecReload"], ["/bin/kill -HUP $MAINPID"])

    def test_server_hardening(self):
        service = read_unit(os.path.join(DEPLOY, "statherd-server.service"))["Service"]
        self.assertEqual(service["User"], ["statherd"])
        self.assertEqual(service["ProtectSystem"], ["strict"])
        self.assertEqual(service["ProtectHome"], ["yes"])
        self.assertEqual(service["PrivateTmp"], ["yes"])
        self.assertEqual(service["NoNewPrivileges"], ["yes"])
        self.assertEqual(service["CapabilityBoundingSet"], [""])
        self.assertEqual(service["AmbientCapabilities"], [""])
        self.assertIn("@system-service", service["SystemCallFilter"])
        self.assertEqual(service["ExecReload"], ["/bin/kill -HUP $MAINPID"])

    def test_units_raise_the_descriptor_limit(self):
        # systemd's default soft limit of 1,024 descriptors is below the server's connection
        # cap plus what the WAL and sinks need (issue 9, item 8); the agent opens every stat
        # file of a host.
        config = os.path.join(harness.SOURCE_DIR, "config", "server.yaml")
        with open(config) as f:
            cap = int(re.search(r"^\s+max_connections:\s*(\d+)", f.read(), re.M).group(1))
        for unit in UNITS:
            service = read_unit(os.path.join(DEPLOY, unit))["Service"]
            self.assertIn("LimitNOFILE", service, unit)
            self.assertGreaterEqual(int(service["LimitNOFILE"][0]), 65536, unit)
            self.assertGreater(int(service["LimitNOFILE"][0]), cap + 64, unit)

    def test_state_directories_match_the_example_configs(self):
        # ProtectSystem=strict leaves only StateDirectory= writable: the default spool and
        # write-ahead log must be inside it.
        agent = read_unit(os.path.join(DEPLOY, "statherd-agent.service"))["Service"]
        server = read_unit(os.path.join(DEPLOY, "statherd-server.service"))["Service"]
        config = os.path.join(harness.SOURCE_DIR, "config")
        spool = yaml_scalar(os.path.join(config, "agent.yaml"), "spool_dir")
        self.assertTrue(spool.startswith(f"/var/lib/{agent['StateDirectory'][0]}/"), spool)
        state = yaml_scalar(os.path.join(config, "server.yaml"), "state_dir")
        self.assertEqual(state, f"/var/lib/{server['StateDirectory'][0]}")
        for service in (agent, server):
            exec_start = service["ExecStart"][0]
            self.assertRegex(exec_start, r"--config /etc/statherd/(agent|server)\.yaml$")


if __name__ == "__main__":
    unittest.main()
