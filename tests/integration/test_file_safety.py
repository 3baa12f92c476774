"""What statherd-agent --once opens in a directory anyone can write (issue 9 items 10 and 11),
with the real binary: a 1.5 GiB sparse *.mmstats is refused unread (the agent's peak RSS stays
small), a symlink to a private file is not followed (its content is in neither the output nor
the errors), and a FIFO is not opened (the agent does not hang on it)."""

import json
import os
import resource
import shutil
import subprocess
import tempfile
import unittest

import harness
import mmstats_v1

SECRET = "TOPSECRET"


def run_once(args, timeout=60):
    argv = [harness.binary("statherd-agent"), "--once"] + args
    proc = subprocess.run(argv, capture_output=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr.decode(errors="replace")


class FileSafetyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="statherd-file-safety-")
        self.elsewhere = tempfile.mkdtemp(prefix="statherd-private-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.addCleanup(shutil.rmtree, self.elsewhere, True)
        mmstats_v1.write_file(os.path.join(self.dir, "good-1-1.mmstats"),
                              [("requests.count", "Q", 41)])
        self.args = ["--mmstats-glob", os.path.join(self.dir, "*.mmstats"),
                     "--v2-glob", os.path.join(self.dir, "*.statherd")]

    def test_huge_sparse_file_is_refused_and_rss_stays_small(self):
        huge = os.path.join(self.dir, "huge-1-2.mmstats")
        mmstats_v1.write_file(huge, [("huge.count", "Q", 7)])
        os.truncate(huge, 1536 << 20)
        code, lines, err = run_once(self.args)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        self.assertEqual(code, 0, err)
        self.assertEqual([(l["name"], l["value"]) for l in lines], [("requests.count", 41)])
        self.assertIn(huge + ": file of 1610612736 bytes is larger than the per-file cap of "
                      "67108864 bytes (max_file_bytes): not read", err)
        self.assertLess(peak_kib, 200 * 1024, "peak RSS of the agent (or an earlier child)")
        # The cap is configurable (--max-file-bytes, YAML max_file_bytes).
        code, lines, err = run_once(self.args + ["--max-file-bytes", "8KiB"])
        self.assertEqual([(l["name"], l["value"]) for l in lines], [("requests.count", 41)])
        self.assertIn("larger than the per-file cap of 8192 bytes", err)

    def test_symlink_to_a_private_file_is_not_followed(self):
        private = os.path.join(self.elsewhere, "private.mmstats")
        mmstats_v1.write_file(private, [(SECRET + ".count", "Q", 99)])
        os.chmod(private, 0o600)
        link = os.path.join(self.dir, "link-1-3.mmstats")
        os.symlink(private, link)
        code, lines, err = run_once(self.args)
        out = json.dumps(lines)
        self.assertEqual(code, 0, err)
        self.assertNotIn(SECRET, out)
        self.assertNotIn(SECRET, err)
        self.assertIn(link + ": is a symbolic link: not followed", err)
        self.assertEqual([l["name"] for l in lines], ["requests.count"])

    def test_fifo_is_not_opened(self):
        os.mkfifo(os.path.join(self.dir, "fifo-1-4.mmstats"))
        os.mkfifo(os.path.join(self.dir, "fifo.statherd"))
        code, lines, err = run_once(self.args, timeout=20)  # opening one would block: timeout
        self.assertEqual(code, 0, err)
        self.assertEqual([l["name"] for l in lines], ["requests.count"])

    def test_errors_quote_no_bytes_of_a_file(self):
        with open(os.path.join(self.dir, "junk-1-5.mmstats"), "wb") as f:
            f.write(bytes([1, 2, 0]) + b"ab" + bytes([len(SECRET), 0]) + SECRET.encode() +
                    b"\0" * 64)
        code, lines, err = run_once(self.args)
        self.assertEqual(code, 0, err)
        self.assertIn("junk-1-5.mmstats: mmstats v1: unsupported type code at offset 7", err)
        self.assertNotIn(SECRET, err)

    def test_a_file_named_self_cannot_forge_the_agents_self_metrics(self):
        mmstats_v1.write_file(os.path.join(self.dir, "self-1-1.mmstats"),
                              [("agent.spool.batches", "Q", 0)])
        code, lines, err = run_once(self.args)
        self.assertEqual(code, 0, err)
        self.assertEqual(sorted({line["app"] for line in lines}), ["good"])
        self.assertIn("self-1-1.mmstats: app name \"self\" is reserved", err)


if __name__ == "__main__":
    unittest.main()
