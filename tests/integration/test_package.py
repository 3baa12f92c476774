"""The Debian package in a fresh container from the local base image (issue #12).

cpack builds two .debs from the build dir under test (nothing is recompiled): the configured
version and the same build with a bumped version. In a new container of localhost/debian:bookworm
(scripts/container-setup.sh makes it; a machine that cannot, FAILS this test with the reason):
- `apt-get install ./statherd_<v>.deb python3`: the statherd user exists, `import statherd`
  works with /usr/bin/python3, the docs and the machine-readable copyright file are in
  /usr/share/doc/statherd;
- /etc/statherd/server.yaml is edited (listen on a free loopback port) and the installed server
  started from it, as user statherd, answers /healthz;
- `dpkg -i` of the bumped version with stdin closed: no conffile prompt, the edit survives
  (dpkg still records the shipped checksum, so it knows the file as a changed conffile), and the
  upgraded server started with that config answers /healthz on the edited port;
- `apt-get remove` keeps the conffiles, `apt-get purge` leaves nothing of the package behind.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import container_engine
import harness
from container_engine import podman

BUMPED = "+itest1"
DOCS = ("README.md", "API.md", "FORMAT.md", "OPERATIONS.md", "copyright")


def cpack(out_dir, version=None):
    os.makedirs(out_dir)
    argv = ["cpack", "-G", "DEB", "-B", out_dir,
            "--config", os.path.join(harness.bin_dir(), "CPackConfig.cmake")]
    if version:
        argv += ["-D", f"CPACK_PACKAGE_VERSION={version}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=out_dir)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    debs = [name for name in os.listdir(out_dir) if name.endswith(".deb")]
    assert len(debs) == 1, debs
    return debs[0]


def deb_field(path, field):
    return subprocess.run(["dpkg-deb", "-f", path, field], capture_output=True, text=True,
                          check=True).stdout.strip()


class PackageInContainerTest(unittest.TestCase):
    def setUp(self):
        container_engine.ensure_engine()
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-package-")
        self.debs = os.path.join(self._tmp.name, "debs")
        os.makedirs(self.debs)
        first = cpack(os.path.join(self._tmp.name, "a"))
        self.version = deb_field(os.path.join(self._tmp.name, "a", first), "Version")
        second = cpack(os.path.join(self._tmp.name, "b"), self.version + BUMPED)
        self.first, self.second = first, second
        self.assertNotEqual(first, second)
        shutil.move(os.path.join(self._tmp.name, "a", first), self.debs)
        shutil.move(os.path.join(self._tmp.name, "b", second), self.debs)
        os.chmod(self._tmp.name, 0o755)
        self.containers = container_engine.Containers()
        self.addCleanup(self._tmp.cleanup)
        self.addCleanup(self.containers.cleanup)
        self.name = self.containers.run(container_engine.unique_name("package"),
                                        "-v", f"{self.debs}:/debs:ro",
                                        container_engine.BASE_IMAGE, "sleep", "infinity")

    def sh(self, script, check=True, timeout=600):
        """Runs a shell script in the container as root, stdin closed (a prompt would fail)."""
        proc = podman("exec", "--env", "DEBIAN_FRONTEND=noninteractive", self.name,
                      "sh", "-ec", script, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"in the container: {script}\nexit {proc.returncode}\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def status(self):
        proc = self.sh("dpkg-query -W -f='${Status} ${Version}' statherd", check=False)
        return proc.stdout.strip()

    def start_server(self, url):
        self.sh("setpriv --reuid statherd --regid statherd --init-groups statherd-server"
                " --config /etc/statherd/server.yaml </dev/null >>/tmp/server.log 2>&1 &"
                " echo $! >/run/statherd-server.pid")
        harness.wait_for(lambda: harness.http_request(url + "/healthz", timeout=2)[0] == 200, 60,
                         interval=0.2, what=f"the installed statherd-server at {url}/healthz"
                         f"\n{self.sh('cat /tmp/server.log', check=False).stdout}")
        pid = self.sh("cat /run/statherd-server.pid").stdout.strip()
        uid = self.sh(f"awk '/^Uid:/ {{ print $2 }}' /proc/{pid}/status").stdout.strip()
        self.assertNotEqual(uid, "0", "the server runs as root")

    def stop_server(self, url):
        self.sh("kill $(cat /run/statherd-server.pid)")
        harness.wait_for(lambda: not harness.port_open("127.0.0.1", int(url.rsplit(":", 1)[1])),
                         30, what="the server to stop")

    def test_install_run_upgrade_keeping_config_then_purge(self):
        started = time.monotonic()
        self.sh(f"apt-get update -qq && apt-get install -y -qq --no-install-recommends "
                f"/debs/{self.first} python3 >/tmp/apt.log 2>&1 || {{ tail -30 /tmp/apt.log; exit 1; }}")
        self.assertEqual(self.status(), f"install ok installed {self.version}")
        print(f"installed {self.first} with its dependencies in {time.monotonic() - started:.0f} s",
              flush=True)

        # The writer library, the docs, the copyright file, the user.
        module = self.sh("cd / && python3 -c 'import statherd; print(statherd.__file__)'").stdout
        self.assertEqual(module.strip(), "/usr/lib/python3/dist-packages/statherd/__init__.py")
        self.sh("STATHERD_DIR=/tmp/st STATHERD_APP=pkg python3 -c 'import statherd; "
                "statherd.Counter(\"jobs\").inc(); print(statherd.stat_file_path())' "
                "| grep -q '^/tmp/st/pkg-'")
        for doc in DOCS:
            self.sh(f"test -s /usr/share/doc/statherd/{doc}")
        copyright_head = self.sh("head -1 /usr/share/doc/statherd/copyright").stdout
        self.assertIn("copyright-format/1.0", copyright_head)
        self.sh("getent passwd statherd | grep -q ':/usr/sbin/nologin$'")

        # Edit the installed config (a free port), add the token, start the installed server.
        port = harness.free_port()
        url = f"http://127.0.0.1:{port}"
        self.sh(f"sed -i 's/^listen: .*/listen: 127.0.0.1:{port}  # edited by test_package/' "
                "/etc/statherd/server.yaml && grep -q 'edited by test_package' /etc/statherd/server.yaml")
        self.sh("head -c 32 /dev/urandom | base64 >/etc/statherd/token && "
                "chown root:statherd /etc/statherd/token && chmod 0640 /etc/statherd/token && "
                "install -d -o statherd -g statherd -m 0700 /var/lib/statherd")
        edited = self.sh("cat /etc/statherd/server.yaml").stdout
        self.start_server(url)
        self.stop_server(url)

        # Upgrade over itself, stdin closed: a conffile prompt would fail the dpkg run.
        upgrade = self.sh(f"dpkg -i /debs/{self.second} 2>&1")
        self.assertNotIn("Configuration file", upgrade.stdout)
        self.assertEqual(self.status(), f"install ok installed {self.version}{BUMPED}")
        self.assertEqual(self.sh("cat /etc/statherd/server.yaml").stdout, edited)
        conffiles = self.sh("dpkg-query -W -f='${Conffiles}' statherd").stdout
        shipped = [line.split() for line in conffiles.splitlines()
                   if line.split()[:1] == ["/etc/statherd/server.yaml"]]
        self.assertEqual(len(shipped), 1, conffiles)
        self.assertNotEqual(shipped[0][1], hashlib.md5(edited.encode()).hexdigest(),
                            "dpkg should know the edited file as a changed conffile")
        self.start_server(url)   # the upgraded binary, with the kept (edited) config
        self.stop_server(url)

        # remove keeps the conffiles; purge leaves nothing of the package.
        self.sh("apt-get remove -y -qq statherd >/dev/null")
        self.assertTrue(self.status().startswith("deinstall ok config-files"), self.status())
        self.sh("test -f /etc/statherd/server.yaml && ! test -e /usr/bin/statherd-server")
        self.sh("apt-get purge -y -qq statherd >/dev/null")
        self.assertNotIn("statherd", self.sh("dpkg -l | awk '{ print $2 }'").stdout.split())
        for gone in ("/etc/statherd", "/usr/bin/statherd-server", "/usr/bin/statherd-agent",
                     "/usr/lib/python3/dist-packages/statherd", "/usr/share/doc/statherd",
                     "/var/lib/statherd", "/usr/lib/systemd/system/statherd-server.service"):
            self.sh(f"! test -e {gone}")
        print(f"package test took {time.monotonic() - started:.0f} s in the container", flush=True)


if __name__ == "__main__":
    unittest.main()
