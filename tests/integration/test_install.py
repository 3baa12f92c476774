"""`cmake --install` layout and the Debian package (CPack DEB), from the build dir under test.

Nothing is rebuilt: the install and cpack runs reuse STATHERD_BIN_DIR's binaries. The package
is installed, removed and purged in a temp root with `dpkg --root ... --force-script-chrootless`
(the maintainer scripts then run on this host with DPKG_ROOT set and must touch only the temp
root), so the test needs root; without it, that one test is skipped and the contents, control
fields and maintainer scripts are still checked.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

BIN_DIR = harness.bin_dir()


def run(argv, env=None, cwd=None, timeout=600):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def cmake_install(destdir, prefix):
    return run(["cmake", "--install", BIN_DIR, "--prefix", prefix], env={"DESTDIR": destdir})


def read(path):
    with open(path) as f:
        return f.read()


class CmakeInstallTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="statherd-install-")
        self.root = os.path.join(self._tmp.name, "root")

    def tearDown(self):
        self._tmp.cleanup()

    def test_prefix_usr_layout(self):
        cmake_install(self.root, "/usr")
        for name in ("statherd-agent", "statherd-server"):
            path = os.path.join(self.root, "usr/bin", name)
            self.assertTrue(os.access(path, os.X_OK), path)
        for name in ("agent.yaml", "server.yaml"):
            installed = os.path.join(self.root, "etc/statherd", name)
            self.assertEqual(read(installed), read(os.path.join(harness.SOURCE_DIR, "config", name)))
        units = os.path.join(self.root, "usr/lib/systemd/system")
        agent_unit = read(os.path.join(units, "statherd-agent.service"))
        self.assertIn("ExecStart=/usr/bin/statherd-agent --config /etc/statherd/agent.yaml\n",
                      agent_unit)
        server_unit = read(os.path.join(units, "statherd-server.service"))
        self.assertIn("ExecStart=/usr/bin/statherd-server --config /etc/statherd/server.yaml\n",
                      server_unit)
        self.assertTrue(os.path.exists(os.path.join(self.root, "usr/share/doc/statherd/README.md")))
        # Nothing lands outside the prefix and /etc.
        self.assertEqual(sorted(os.listdir(self.root)), ["etc", "usr"])

    def test_other_prefix_rewrites_unit_paths(self):
        cmake_install(self.root, "/opt/statherd")
        base = os.path.join(self.root, "opt/statherd")
        self.assertTrue(os.access(os.path.join(base, "bin/statherd-server"), os.X_OK))
        self.assertTrue(os.path.exists(os.path.join(base, "etc/statherd/server.yaml")))
        unit = read(os.path.join(base, "lib/systemd/system/statherd-server.service"))
        self.assertIn("ExecStart=/opt/statherd/bin/statherd-server "
                      "--config /opt/statherd/etc/statherd/server.yaml\n", unit)
        self.assertNotIn("/usr/bin/statherd", unit)

    def test_reinstall_keeps_an_edited_config(self):
        cmake_install(self.root, "/usr")
        config = os.path.join(self.root, "etc/statherd/agent.yaml")
        with open(config, "w") as f:
            f.write("interval: 30s\n")
        cmake_install(self.root, "/usr")
        self.assertEqual(read(config), "interval: 30s\n")


class DebianPackageTest(unittest.TestCase):
    """Builds the .deb once for the class (cpack re-runs the install and dpkg-shlibdeps)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="statherd-deb-")
        cls.tmp = cls._tmp.name
        out_dir = os.path.join(cls.tmp, "out")
        run(["cpack", "-G", "DEB", "-B", out_dir, "--config",
             os.path.join(BIN_DIR, "CPackConfig.cmake")], cwd=cls.tmp)
        debs = [name for name in os.listdir(out_dir) if name.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(out_dir, debs[0])
        cls.control_dir = os.path.join(cls.tmp, "control")
        run(["dpkg-deb", "-e", cls.deb, cls.control_dir])

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).strip()

    def test_file_name_and_control_fields(self):
        self.assertRegex(os.path.basename(self.deb), r"^statherd_\d+\.\d+\.\d+_[a-z0-9]+\.deb$")
        self.assertEqual(self.field("Package"), "statherd")
        self.assertRegex(self.field("Version"), r"^\d+\.\d+\.\d+$")
        arch = run(["dpkg", "--print-architecture"]).strip()
        self.assertEqual(self.field("Architecture"), arch)
        depends = [d.strip().split(" ")[0] for d in self.field("Depends").split(",")]
        # From dpkg-shlibdeps on the binaries, plus passwd for useradd in postinst.
        for package in ("libc6", "libstdc++6", "libyaml-cpp0.7", "passwd"):
            self.assertIn(package, depends)
        # The server's allocator (CMakeLists.txt STATHERD_MALLOC): a dependency exactly when
        # the build linked it.
        with open(os.path.join(BIN_DIR, "CMakeCache.txt")) as f:
            linked = re.search(r"^STATHERD_MALLOC_USED:INTERNAL=tcmalloc$", f.read(),
                               re.MULTILINE) is not None
        self.assertEqual("libtcmalloc-minimal4" in depends, linked, depends)
        self.assertIn("statherd-agent", self.field("Description"))
        info = run(["dpkg-deb", "--info", self.deb])
        for script in ("postinst", "prerm", "postrm", "conffiles"):
            self.assertRegex(info, rf"\b{script}\b")

    def test_contents(self):
        listing = run(["dpkg-deb", "-c", self.deb])
        entries = {}
        for line in listing.splitlines():
            mode, owner = line.split()[0], line.split()[1]
            path = line.split()[-1] if " -> " not in line else line.split(" -> ")[0].split()[-1]
            entries[path] = (mode, owner)
        expected = {
            "./usr/bin/statherd-agent": "-rwxr-xr-x",
            "./usr/bin/statherd-server": "-rwxr-xr-x",
            "./etc/statherd/agent.yaml": "-rw-r--r--",
            "./etc/statherd/server.yaml": "-rw-r--r--",
            "./usr/lib/systemd/system/statherd-agent.service": "-rw-r--r--",
            "./usr/lib/systemd/system/statherd-server.service": "-rw-r--r--",
            "./usr/share/doc/statherd/README.md": "-rw-r--r--",
        }
        for path, mode in expected.items():
            self.assertIn(path, entries)
            self.assertEqual(entries[path], (mode, "root/root"), path)
        self.assertFalse([p for p in entries if p.startswith("./usr/local")], entries)

    def test_conffiles_and_maintainer_scripts(self):
        conffiles = read(os.path.join(self.control_dir, "conffiles")).split()
        self.assertEqual(conffiles, ["/etc/statherd/agent.yaml", "/etc/statherd/server.yaml"])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control_dir, script)
            self.assertTrue(os.access(path, os.X_OK), f"{script} not executable")
            self.assertTrue(read(path).startswith("#!/bin/sh\n"))
            run(["sh", "-n", path])
            if shutil.which("shellcheck"):
                run(["shellcheck", "-s", "sh", path])

    def make_fake_root(self):
        """An empty system for dpkg --root: dpkg's database plus passwd/group files."""
        root = tempfile.mkdtemp(prefix="root-", dir=self.tmp)
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "etc", "usr/sbin"):
            os.makedirs(os.path.join(root, d))
        for name, text in (("var/lib/dpkg/status", ""), ("var/lib/dpkg/available", ""),
                           ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
                           ("etc/group", "root:x:0:\n"), ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
                           ("etc/gshadow", "root:*::\n")):
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        return root

    def dpkg(self, root, *args):
        return run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-depends",
                    "--log=/dev/null", *args])

    def test_install_remove_purge_in_a_temp_root(self):
        if os.geteuid() != 0:
            self.skipTest("dpkg --root with maintainer scripts needs root")
        root = self.make_fake_root()
        self.dpkg(root, "--install", self.deb)
        status = run(["dpkg-query", f"--root={root}", "-W", "-f=${Status}", "statherd"])
        self.assertEqual(status, "install ok installed")
        self.assertTrue(os.access(os.path.join(root, "usr/bin/statherd-agent"), os.X_OK))
        # postinst made the system user and group, in the temp root only.
        passwd = read(os.path.join(root, "etc/passwd"))
        user = re.search(r"^statherd:x:(\d+):(\d+):[^:]*:/var/lib/statherd:/usr/sbin/nologin$",
                         passwd, re.MULTILINE)
        self.assertIsNotNone(user, passwd)
        self.assertLess(int(user.group(1)), 1000, "not a system uid")
        group = re.search(r"^statherd:x:(\d+):", read(os.path.join(root, "etc/group")),
                          re.MULTILINE)
        self.assertEqual(group.group(1), user.group(2))
        etc = os.stat(os.path.join(root, "etc/statherd"))
        self.assertEqual((etc.st_gid, etc.st_mode & 0o777), (int(group.group(1)), 0o750))
        self.assertNotIn("statherd:", read("/etc/passwd"), "postinst touched the host")

        # Reinstall (an upgrade to the same version) keeps the user, runs cleanly.
        self.dpkg(root, "--install", self.deb)
        self.assertEqual(len(re.findall(r"(?m)^statherd:", read(os.path.join(root, "etc/passwd")))), 1)

        self.dpkg(root, "--remove", "statherd")
        for gone in ("usr/bin/statherd-agent", "usr/bin/statherd-server",
                     "usr/lib/systemd/system/statherd-agent.service",
                     "usr/lib/systemd/system/statherd-server.service"):
            self.assertFalse(os.path.exists(os.path.join(root, gone)), gone)
        # remove keeps conffiles; purge removes them and the state directories.
        self.assertTrue(os.path.exists(os.path.join(root, "etc/statherd/agent.yaml")))
        os.makedirs(os.path.join(root, "var/lib/statherd-agent/spool"))
        self.dpkg(root, "--purge", "statherd")
        for gone in ("etc/statherd", "var/lib/statherd-agent"):
            self.assertFalse(os.path.exists(os.path.join(root, gone)), gone)
        listed = subprocess.run(["dpkg-query", f"--root={root}", "-l", "statherd"],
                                capture_output=True, text=True)
        self.assertNotRegex(listed.stdout, r"(?m)^[ir][ic] +statherd ")


if __name__ == "__main__":
    unittest.main()
