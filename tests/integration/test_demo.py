"""make demo's driver (scripts/demo.py) end to end, briefly and without a terminal: the table
shows the fleet, both simulated hosts and their workers, the Scales and mmstats apps; the curl of
the JSON API prints its answer; the workers' counts equal statherd's; no escape codes; every
process it started is gone afterwards."""

import os
import re
import signal
import subprocess
import unittest

import harness

DEMO = os.path.join(harness.SOURCE_DIR, "scripts", "demo.py")


class DemoTest(unittest.TestCase):
    def run_demo(self, *args, interrupt=False):
        """interrupt: a Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once
        the first table is out."""
        proc = subprocess.Popen(["/usr/bin/python3", DEMO, "--build", harness.bin_dir(), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        head = ""
        if interrupt:
            for line in proc.stdout:
                head += line
                if line.startswith("interval "):
                    os.killpg(proc.pid, signal.SIGINT)
                    break
        out, err = proc.communicate(timeout=120)
        return proc.returncode, head + out, err

    def assert_summary(self, out):
        self.assertNotIn("\x1b", out)
        for k in ("requests", "errors"):
            m = re.search(rf"^  {k} +the workers counted +(\d+), statherd counted +(\d+)", out,
                          re.M)
            self.assertIsNotNone(m, out)
            self.assertEqual(m.group(1), m.group(2), out)
        self.assertRegex(out, r"\$ curl -sS 'http://127\.0\.0\.1:\d+/render\?target=")
        self.assertRegex(out, r'\n\[\{"target":"[^"]+","tags":\{[^}]*\},"datapoints":\[\[')
        workdir = re.search(r"logs and Graphite lines: (\S+)", out).group(1)
        alive = subprocess.run(["pgrep", "-f", workdir], capture_output=True, text=True)
        self.assertEqual(alive.stdout, "", "processes of the demo still running")

    def test_table_and_exact_summary(self):
        rc, out, err = self.run_demo("--seconds", "8")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"\nfleet \(merged\) +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\d+\n")
        for host in ("web-1", "web-2"):
            self.assertRegex(out, rf"\n  host {host} +\d+\.\d")
        self.assertEqual(len(set(re.findall(r"\n    worker (\d+)", out))), 4, out)
        self.assertRegex(out, r"billing \(Scales /status\): \d+\.\d charges/s")
        self.assertRegex(out, r"cron \(an original mmstats v1 file\): \d+\.\d jobs/s")
        self.assert_summary(out)

    def test_ctrl_c_reaches_only_the_driver(self):
        # The terminal sends SIGINT to the whole foreground group: the daemons used to stop
        # first and the summary failed with "Connection refused".
        rc, out, err = self.run_demo("--seconds", "60", interrupt=True)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("Connection refused", out + err)
        self.assert_summary(out)


if __name__ == "__main__":
    unittest.main()
