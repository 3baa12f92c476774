"""statherd-server linked with tcmalloc asks for transparent huge pages for the heap it grows
(server/huge_heap.cpp): after batches of new series, the server's mappings advised MADV_HUGEPAGE
(the kernel's `hg` flag) cover at least half of what its RSS grew by; with STATHERD_HUGE_HEAP=0
no mapping is advised. The start-up log states the advice and tcmalloc's thread-cache target as
tcmalloc holds it (its default, or TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES)."""

import os
import re
import unittest

import harness
from test_bad_input import CONTENT_TYPE, INGEST, encode_batch

THP = "/sys/kernel/mm/transparent_hugepage/enabled"


def linked_tcmalloc():
    with open(os.path.join(harness.bin_dir(), "CMakeCache.txt")) as f:
        return re.search(r"^STATHERD_MALLOC_USED:INTERNAL=tcmalloc$", f.read(), re.M) is not None


def huge_mappings_kb(pid):
    """KiB of the process's mappings advised MADV_HUGEPAGE (VmFlags `hg`), one per mapping."""
    found, size = [], 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                size = (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
            elif line.startswith("VmFlags:") and "hg" in line.split()[1:]:
                found.append(size)
    return found


def thp_usable():
    try:
        with open(THP) as f:
            return "[never]" not in f.read()
    except OSError:
        return False


class ServerWithEnv(harness.TempFilesMixin):
    """Starts the server with variables set (None: removed) in its environment."""

    def launch(self, env):
        self.server = harness.StatherdServer(self.workdir, self.token_file, env=env).start()

    def allocator_line(self):
        """The server's start-up line about its allocator (waits for it)."""
        found = []

        def logged():
            found[:] = re.findall(r"info: (allocator .*)", self.server.process.read_stderr())
            return found

        harness.wait_for(logged, 10, what="the allocator line in the server's log")
        return found[0]

    def setUp(self):
        if not linked_tcmalloc():
            self.skipTest("this build links glibc's malloc (STATHERD_MALLOC), not tcmalloc")
        self.make_temp_files("huge-heap-", harness.TOKEN)
        self.workdir, self.token_file = self.tmp, self.token
        self.server = None

    def tearDown(self):
        if self.server is not None:
            self.server.stop()


@unittest.skipUnless(thp_usable(), "the kernel has no transparent huge pages, or they are off")
class HugeHeapTest(ServerWithEnv, unittest.TestCase):
    def start(self, env_value):
        self.launch({"STATHERD_HUGE_HEAP": env_value, "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES": None})
        pid = self.server.process.pid
        rss_before = self.rss_kb(pid)
        # 40 processes x 1000 new series: tens of MB of engine, store and sink state.
        for p in range(40):
            sources = [("hh-host", "hugeapp", 1000 + p, 1, f"/tmp/hugeapp-{p}", True,
                        [(f"metric_{i}.count", 1, float(i)) for i in range(1000)])]
            status, body = harness.http_request(
                self.server.url + INGEST, data=encode_batch("hh-agent", p + 1, sources),
                headers={"Content-Type": CONTENT_TYPE,
                         "Authorization": f"Bearer {harness.TOKEN}"}, method="POST")
            self.assertEqual(status, 200, body[:300])
        harness.wait_for(lambda: self.server.find("statherd.hugeapp.*"), 30,
                         what="hugeapp's series in the store")
        harness.wait_for(lambda: self.rss_kb(pid) > rss_before + 8192, 30,
                         what="the server's RSS grown by 8 MiB")
        return pid, self.rss_kb(pid) - rss_before

    @staticmethod
    def rss_kb(pid):
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))

    def test_grown_heap_is_advised_huge(self):
        pid, grown_kb = self.start("1")
        advised = huge_mappings_kb(pid)
        self.assertGreaterEqual(sum(advised), grown_kb // 2,
                                f"mappings with VmFlags hg (KiB): {advised}; RSS grew {grown_kb} KiB")
        self.assertRegex(self.allocator_line(),
                         r"^allocator tcmalloc, heap advised for huge pages, thread caches \d+ bytes$")

    def test_env_turns_it_off(self):
        pid, _ = self.start("0")
        self.assertEqual(huge_mappings_kb(pid), [])
        self.assertIn("heap not advised (STATHERD_HUGE_HEAP=0)", self.allocator_line())


class ThreadCacheTest(ServerWithEnv, unittest.TestCase):
    def test_default_is_tcmallocs(self):
        # tcmalloc's own default (32 MiB in gperftools 2.10; other versions may differ): the
        # server does not set one.
        self.launch({"TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES": None})
        line = self.allocator_line()
        m = re.search(r"thread caches (\d+) bytes$", line)
        self.assertIsNotNone(m, line)
        self.assertGreaterEqual(int(m.group(1)), 16 << 20, line)

    def test_environment_sets_it(self):
        self.launch({"TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES": str(8 << 20)})
        line = self.allocator_line()
        self.assertTrue(line.endswith("thread caches 8388608 bytes"), line)


if __name__ == "__main__":
    unittest.main()
