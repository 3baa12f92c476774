"""statherd-server names its long-lived threads, so `top -H`, `ps -L`, perf and gdb tell them
apart: the HTTP thread, the WAL committer, the pipeline, the read thread, the rollup workers,
the thread kept beside the pipeline for the sinks' conversion of an interval, and the Graphite
sender. Before, every thread showed the binary's name."""

import os
import unittest

import harness


class ThreadNamesTest(harness.TempFilesMixin, unittest.TestCase):
    def setUp(self):
        self.make_temp_files("thread-names-", harness.TOKEN)
        config = self.write("server.yaml", "threads: 3\n")
        self.server = harness.StatherdServer(self.tmp, self.token, graphite="-",
                                             extra_args=["--config", config]).start()
        self.addCleanup(self.server.stop)

    def names(self):
        pid = self.server.process.pid
        found = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/comm") as f:
                    found.append(f.read().strip())
            except OSError:  # a thread that just ended
                pass
        return found

    def test_every_long_lived_thread_is_named(self):
        wanted = {"http", "wal-commit", "pipeline", "reads", "rollup-1", "rollup-2", "sinks-1",
                  "graphite-send"}
        harness.wait_for(lambda: wanted <= set(self.names()), 10, interval=0.1,
                         what=f"threads named {sorted(wanted)}")
        self.assertNotIn("rollup-3", self.names())  # the pipeline thread is the third


if __name__ == "__main__":
    unittest.main()
