"""`--check-config` of both daemons on good and bad YAML files.

Each bad file must make the daemon exit non-zero (2 for both daemons: a configuration problem) and print one line per
problem as `file:line:column: key: message (allowed: ...)`; a good file exits 0 and prints
"configuration ok". Nothing is started: --check-config only reads the files.
"""

import os
import re
import subprocess
import unittest

import harness

AGENT_BAD_EXIT = 2
SERVER_BAD_EXIT = 2


class CheckConfigCase(harness.TempFilesMixin, unittest.TestCase):
    program = None  # "statherd-agent" or "statherd-server"

    def setUp(self):
        self.make_temp_files("statherd-check-config-", "s3cret-token")
        self.empty_token = os.path.join(self.tmp, "empty-token")
        open(self.empty_token, "w").close()
        self.missing_token = os.path.join(self.tmp, "no-such-dir", "token")

    def check(self, path, *extra):
        proc = subprocess.run([harness.binary(self.program), "--check-config", "--config", path,
                               *extra], capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout, proc.stderr

    def assert_ok(self, path, *extra):
        rc, out, err = self.check(path, *extra)
        self.assertEqual(rc, 0, f"expected a valid config, got:\n{err}")
        self.assertIn("configuration ok", out.lower())

    def assert_problems(self, path, expected_exit, problems, *extra):
        """problems: (line, column, key, message fragment, allowed fragment or None)."""
        rc, out, err = self.check(path, *extra)
        self.assertEqual(rc, expected_exit, f"stdout:\n{out}\nstderr:\n{err}")
        self.assertNotIn("configuration ok", out.lower())
        for line, column, key, message, allowed in problems:
            pattern = (re.escape(f"{path}:{line}:{column}: {key}: ") + ".*" +
                       re.escape(message))
            if allowed is not None:
                pattern += r".*\(allowed: .*" + re.escape(allowed)
            self.assertRegex(err, pattern, f"missing problem {key!r} at {line}:{column}")
        located = re.findall(re.escape(path) + r":\d+:\d+: ", err)
        self.assertEqual(len(located), len(problems), f"expected one line per problem:\n{err}")


class AgentCheckConfigTest(CheckConfigCase):
    program = "statherd-agent"

    def check(self, path, *extra):
        # The default spool_dir (/var/lib/statherd-agent/spool) is checked too; point it at a
        # creatable directory unless the test is about the spool dir.
        if "--spool-dir" not in extra:
            extra = (*extra, "--spool-dir", os.path.join(self.tmp, "spool"))
        return super().check(path, *extra)

    def run_agent(self, path, *extra):
        proc = subprocess.run([harness.binary(self.program), "--config", path, *extra],
                              capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stderr

    def test_shared_spool_dir_is_refused_and_left_alone(self):
        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        other = os.path.join(shared, ".tmp-other-users-file")
        open(other, "w").close()
        path = self.write("agent.yaml", f"token_file: {self.token}\n")
        rc, out, err = self.check(path, "--spool-dir", shared)
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertIn(f"spool_dir {shared} is world-writable", err)
        self.assertIn("hint: point --spool-dir", err)
        rc, err = self.run_agent(path, "--spool-dir", shared)  # the start refuses it the same way
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertIn(f"spool_dir {shared} is world-writable", err)
        self.assertEqual(os.stat(shared).st_mode & 0o7777, 0o1777)
        self.assertTrue(os.path.exists(other))
        self.assertFalse(os.path.exists(os.path.join(shared, "quarantine")))

    def test_errors_look_like_the_servers_once_each(self):
        # As statherd-server prints them: "statherd-agent: error: FILE:L:C ..." then one hint;
        # interval: 50ms once (it was also repeated without its file:line).
        path = self.write("a1.yaml", f"token_file: {self.token}\ninterval: 50ms\n"
                                     "mmstats:\n  glob: [a]\n")
        rc, out, err = self.check(path)
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertTrue(err.startswith(f"statherd-agent: error: {path}:2:11: interval: "), err)
        self.assertIn(f"\n{path}:4:3: mmstats.glob: unknown key", err)
        self.assertEqual(err.count("out of range"), 1, err)
        self.assertTrue(err.endswith("\nhint: fix the configuration; config/agent.yaml documents "
                                     "every key\n"), err)

    def test_value_problems_carry_the_prefix_and_their_hint(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\nspool_max_bytes: 100\n")
        rc, out, err = self.check(path)
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertEqual(err, "statherd-agent: error: spool_max_bytes: 100 is too small\n"
                              "hint: use at least 4KiB, e.g. 256MiB\n")

    def test_missing_config_file_is_the_only_problem_reported(self):
        missing = os.path.join(self.tmp, "absent.yaml")
        rc, out, err = self.check(missing)
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertTrue(err.startswith(f"statherd-agent: error: {missing}: cannot read config "
                                       "file"), err)
        self.assertNotIn("token_file", err)
        self.assertIn("\nhint: ", err)

    def test_says_configuration_ok_as_the_server_does(self):
        rc, out, err = self.check(self.write("agent.yaml", f"token_file: {self.token}\n"))
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)

    def test_globs_matching_nothing_are_warned_about_and_still_ok(self):
        empty = os.path.join(self.tmp, "stats")
        os.makedirs(empty)
        glob = os.path.join(empty, "*.mmstats")
        path = self.write("agent.yaml", f"token_file: {self.token}\n"
                                        f"mmstats:\n  globs: [\"{glob}\"]\n")
        missing = os.path.join(self.tmp, "no-such-dir")
        rc, out, err = self.check(path, "--prom-multiproc-dir", f"web={missing}")
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)
        self.assertIn(f"statherd-agent: warning: mmstats glob {glob} matches no file now\nhint: ",
                      err)
        self.assertIn(f"warning: prometheus multiprocess directory {missing} does not exist", err)
        with open(os.path.join(empty, "app-1.mmstats"), "wb"):
            pass  # a match: the glob warning goes
        os.makedirs(missing)
        rc, out, err = self.check(path, "--prom-multiproc-dir", f"web={missing}")
        self.assertEqual((rc, out, err), (0, "configuration ok\n", ""))

    def test_spool_dir_that_cannot_be_created_is_reported(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\n")
        for run in (self.check, self.run_agent):
            with self.subTest(run=run.__name__):
                result = run(path, "--spool-dir", "/proc/statherd-nope")
                self.assertEqual(result[0], AGENT_BAD_EXIT, result[-1])
                self.assertIn("cannot create spool_dir /proc/statherd-nope", result[-1])

    def test_shipped_example_config_is_valid(self):
        example = os.path.join(harness.SOURCE_DIR, "config", "agent.yaml")
        self.assert_ok(example, "--token-file", self.token)

    def test_minimal_config_is_valid(self):
        path = self.write("agent.yaml", f"server: http://10.0.0.5:8470\ntoken_file: {self.token}\n"
                                        "interval: 500ms\nspool_max_bytes: 64KiB\n"
                                        "mmstats:\n  globs: [\"/tmp/*.mmstats\"]\n")
        self.assert_ok(path)

    def test_unknown_keys_at_top_level_and_nested(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\nintervall: 10s\n"
                                        "mmstats:\n  glob: [a]\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (2, 1, "intervall", "unknown key", "interval"),
            (4, 3, "mmstats.glob", "unknown key", "globs"),
        ])

    def test_wrong_types(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\nhost: [a, b]\n"
                                        "spool_max_bytes: lots\nmmstats:\n  globs: /tmp/x\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (2, 7, "host", "expected a string, got a list", "a string"),
            (3, 18, "spool_max_bytes", "lots", "a size like"),
            (5, 10, "mmstats.globs", "expected a list of strings", "a list"),
        ])

    def test_bad_durations(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\ninterval: 10x\n"
                                        "ship_timeout: soon\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (2, 11, "interval", "10x", "a duration like 10s"),
            (3, 15, "ship_timeout", "soon", "a duration like 10s"),
        ])

    def test_bad_server_addresses(self):
        for url in ("https://collector:8470", "http://collector:99999", "collector:8470"):
            with self.subTest(url=url):
                path = self.write("agent.yaml", f"token_file: {self.token}\nserver: {url}\n")
                self.assert_problems(path, AGENT_BAD_EXIT, [
                    (2, 9, "server", "", "http://host:port[/path]"),
                ])

    def test_missing_token_file_is_reported_at_its_key(self):
        path = self.write("agent.yaml", f"token_file: {self.missing_token}\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (1, 13, "token_file", f"cannot read token file {self.missing_token}",
             "a readable, non-empty file"),
        ])

    def test_empty_token_file_is_reported(self):
        path = self.write("agent.yaml", f"token_file: {self.empty_token}\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (1, 13, "token_file", "is empty", "a readable, non-empty file"),
        ])

    def test_token_file_flag_overrides_a_missing_yaml_token_file(self):
        path = self.write("agent.yaml", f"token_file: {self.missing_token}\n")
        self.assert_ok(path, "--token-file", self.token)
        rc, _, err = self.check(self.write("ok.yaml", "interval: 5s\n"),
                                "--token-file", self.missing_token)
        self.assertEqual(rc, AGENT_BAD_EXIT)
        self.assertIn(f"--token-file: cannot read token file {self.missing_token}", err)

    def test_yaml_syntax_error(self):
        path = self.write("agent.yaml", f"token_file: {self.token}\nmmstats:\n  globs: [a, b\n")
        rc, out, err = self.check(path)
        self.assertEqual(rc, AGENT_BAD_EXIT, err)
        self.assertRegex(err, re.escape(path) + r":\d+:\d+: .*YAML syntax error")

    def test_unreadable_config_file(self):
        rc, _, err = self.check(os.path.join(self.tmp, "absent.yaml"))
        self.assertEqual(rc, AGENT_BAD_EXIT)
        self.assertIn("absent.yaml", err)


    def test_agent_interval_range(self):
        path = self.write("agent.yaml", f"server: http://10.0.0.5:8470\ntoken_file: {self.token}\n"
                                        "interval: 1ms\n")
        self.assert_problems(path, AGENT_BAD_EXIT, [
            (3, 11, "interval", "out of range", "100ms to 1h"),
        ])

class ServerCheckConfigTest(CheckConfigCase):
    program = "statherd-server"

    def test_shipped_example_config_is_valid(self):
        example = os.path.join(harness.SOURCE_DIR, "config", "server.yaml")
        self.assert_ok(example, "--token-file", self.token)

    def test_minimal_config_is_valid(self):
        path = self.write("server.yaml", f"listen: 0.0.0.0:8470\ntoken_file: {self.token}\n"
                                         "interval: 1m\ngraphite:\n  address: carbon:2003\n")
        self.assert_ok(path)

    def test_unknown_keys_at_top_level_and_nested(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nlisten_on: 1.2.3.4:5\n"
                                         "graphite:\n  adress: carbon:2003\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (2, 1, "listen_on", "unknown key", "listen"),
            (4, 3, "graphite.adress", "unknown key", "address"),
        ])

    def test_wrong_types(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nlevels:\n  host: maybe\n"
                                         "limits:\n  max_series_total: many\n"
                                         "memory: 5\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (3, 9, "levels.host", "expected true or false", "true, false"),
            (5, 21, "limits.max_series_total", "many", None),
            (6, 9, "memory", "expected a mapping", None),
        ])

    def test_bad_durations(self):
        path = self.write("server.yaml", f"token_file: {self.token}\ninterval: abc\n"
                                         "memory:\n  retention: 1y\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (2, 11, "interval", "abc", "whole seconds from 1s to 1h"),
            (4, 14, "memory.retention", "1y", "a duration like 10s"),
        ])

    def test_bad_addresses(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nlisten: 127.0.0.1:99999\n"
                                         "graphite:\n  address: carbon\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (2, 9, "listen", "not a HOST:PORT", "127.0.0.1:8470"),
            (4, 12, "graphite.address", "not a HOST:PORT", "HOST:PORT, or - for stdout"),
        ])

    def test_missing_token_file_is_reported_at_its_key(self):
        path = self.write("server.yaml", f"token_file: {self.missing_token}\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (1, 13, "token_file", f"cannot read token file {self.missing_token}",
             "a readable, non-empty file"),
        ])

    def test_empty_token_file_is_reported(self):
        path = self.write("server.yaml", f"token_file: {self.empty_token}\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (1, 13, "token_file", "is empty", "a readable, non-empty file"),
        ])

    def test_no_token_file_at_all(self):
        rc, _, err = self.check(self.write("server.yaml", "interval: 10s\n"))
        self.assertEqual(rc, SERVER_BAD_EXIT)
        self.assertIn("no token file configured", err)
        self.assertIn("hint:", err)

    def test_token_file_flag_overrides_a_missing_yaml_token_file(self):
        path = self.write("server.yaml", f"token_file: {self.missing_token}\n")
        self.assert_ok(path, "--token-file", self.token)

    def test_yaml_syntax_error(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nlisten: [1\n")
        rc, _, err = self.check(path)
        self.assertEqual(rc, SERVER_BAD_EXIT, err)
        self.assertRegex(err, re.escape(path) + r":\d+:\d+: .*YAML syntax error")

    def test_every_problem_is_reported_not_only_the_first(self):
        path = self.write("server.yaml", f"token_file: {self.token}\ninterval: 0.x\n"
                                         "late_window: []\nbogus: 1\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (2, 11, "interval", "0.x", None),
            (3, 14, "late_window", "expected a duration", None),
            (4, 1, "bogus", "unknown key", None),
        ])


    def test_intervals_are_whole_seconds(self):
        for bad, fragment in (("1ms", "not a whole number of seconds"),
                             ("1500ms", "not a whole number of seconds")):
            path = self.write("server.yaml", f"token_file: {self.token}\ninterval: {bad}\n")
            self.assert_problems(path, SERVER_BAD_EXIT, [
                (2, 11, "interval", fragment, "whole seconds from 1s to 1h"),
            ])
        rc, _, err = self.check(self.write("server.yaml", f"token_file: {self.token}\n"),
                                "--interval", "1500ms")
        self.assertEqual(rc, SERVER_BAD_EXIT, err)
        self.assertIn("--interval", err)
        self.assertIn("hint:", err)

    def test_retention_the_memory_store_cannot_hold(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nmemory:\n  retention: 1000000d\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (3, 14, "memory.retention", "over the limit of 100000 points per path", "at interval 10s"),
        ])
        rc, _, err = self.check(self.write("ok.yaml", f"token_file: {self.token}\n"),
                                "--retention", "1000000d")
        self.assertEqual(rc, SERVER_BAD_EXIT, err)
        self.assertIn("retention", err)
        self.assertIn("hint:", err)

    def test_zero_max_body_bytes(self):
        path = self.write("server.yaml", f"token_file: {self.token}\nlimits:\n  max_body_bytes: 0\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (3, 19, "limits.max_body_bytes", "out of range", "a size from 1024"),
        ])

    def test_world_writable_state_dir(self):
        state = os.path.join(self.tmp, "state")
        os.mkdir(state)
        os.chmod(state, 0o777)
        path = self.write("server.yaml", f"token_file: {self.token}\nstate_dir: {state}\n")
        self.assert_problems(path, SERVER_BAD_EXIT, [
            (2, 12, "state_dir", "world-writable (mode 0777)", f"chmod 0700 {state}"),
        ])
        rc, _, err = self.check(self.write("ok.yaml", f"token_file: {self.token}\n"),
                                "--state-dir", state)
        self.assertEqual(rc, SERVER_BAD_EXIT, err)
        self.assertIn("world-writable", err)
        os.chmod(state, 0o700)
        self.assert_ok(path)

if __name__ == "__main__":
    unittest.main()
