"""The two daemons' command lines say the same thing for the same mistake (issue #12 item 8),
pick a state directory a non-root user can use (item 6), and `statherd-agent --once` says what it
searched when nothing matched (item 7). Each case runs both real binaries."""

import os
import pwd
import re
import signal
import subprocess
import unittest

import harness

PROGRAMS = ("statherd-agent", "statherd-server")


def run(program, *args, env=None, user=None, timeout=30):
    """Runs the program (as `user`, a pwd entry, if given: only root can) with exactly `env`."""
    def become_user():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    proc = subprocess.run([harness.binary(program), *args], capture_output=True, text=True,
                          timeout=timeout, env=env,
                          preexec_fn=become_user if user is not None else None)
    return proc.returncode, proc.stdout, proc.stderr


class CliTestCase(harness.TempFilesMixin, unittest.TestCase):
    def setUp(self):
        self.make_temp_files("statherd-cli-", "s3cret")

    def dirs(self, program):
        """Flags giving the program a private state dir, so a check never touches /var/lib."""
        if program == "statherd-agent":
            return ["--spool-dir", os.path.join(self.tmp, "spool")]
        return ["--state-dir", os.path.join(self.tmp, "state")]


class SameWordsTest(CliTestCase):
    def assert_usage_error(self, args, message):
        for program in PROGRAMS:
            with self.subTest(program=program):
                rc, out, err = run(program, *args)
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")
                # The problem and a hint to --help; no usage dump, as both daemons do it.
                self.assertEqual(err, f"{program}: error: {message}\n"
                                      f"hint: run {program} --help for every option\n")

    def test_unknown_option(self):
        self.assert_usage_error(["--bogus"], "--bogus: unknown option")

    def test_positional_argument(self):
        self.assert_usage_error(["extra"],
                                "extra: unexpected argument (options start with --)")

    def test_missing_value(self):
        self.assert_usage_error(["--interval"], "--interval: needs a value")

    def test_configuration_ok(self):
        for program in PROGRAMS:
            with self.subTest(program=program):
                rc, out, err = run(program, "--check-config", "--token-file", self.token,
                                   *self.dirs(program))
                self.assertEqual((rc, out), (0, "configuration ok\n"), err)

    def test_unreadable_token_file_flag(self):
        missing = os.path.join(self.tmp, "no-token")
        for program in PROGRAMS:
            with self.subTest(program=program):
                rc, out, err = run(program, "--check-config", "--token-file", missing,
                                   *self.dirs(program))
                self.assertEqual(rc, 2, err)
                self.assertTrue(err.startswith(
                    f"{program}: error: --token-file: cannot read token file {missing}: "
                    "No such file or directory\nhint: create one with: "), err)
                self.assertEqual(err.count("\n"), 2, err)

    def test_config_errors_in_line_order_allowed_said_once(self):
        # Each program's unknown key comes first in the file but was reported after the
        # values; the integer's range was said in the message and again as "allowed".
        text = (f"bogus: 1\ninterval: abc\ntoken_file: {self.token}\nhost: [a]\n"
                "listen: x\nlimits:\n  max_connections: many\n")
        path = self.write("bad.yaml", text)
        for program in PROGRAMS:
            with self.subTest(program=program):
                rc, _, err = run(program, "--check-config", "--config", path,
                                 *self.dirs(program))
                self.assertEqual(rc, 2, err)
                self.assertTrue(err.startswith(f"{program}: error: {path}:1:1: bogus: "), err)
                located = [(int(l), int(c)) for l, c in
                           re.findall(re.escape(path) + r":(\d+):(\d+): ", err)]
                self.assertGreaterEqual(len(located), 3, err)
                self.assertEqual(located, sorted(located), err)
                for line in err.splitlines():
                    self.assertLessEqual(line.count("integer from"), 1, line)
                self.assertEqual(err.count("\nhint: "), 1, err)

    def test_yaml_syntax_error_is_the_only_error(self):
        path = self.write("syntax.yaml", "interval: 10s\nbogus: [1\n")
        for program in PROGRAMS:
            with self.subTest(program=program):
                rc, _, err = run(program, "--check-config", "--config", path)
                self.assertEqual(rc, 2, err)
                self.assertRegex(err, rf"^{program}: error: {re.escape(path)}:\d+:\d+: "
                                      r"YAML syntax error: [^\n]*\nhint: [^\n]*\n$")


class StateDirDefaultTest(CliTestCase):
    def clean_env(self, **extra):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(extra)
        return env

    def test_systemd_state_directory(self):
        state = os.path.join(self.tmp, "systemd-state")
        os.mkdir(state, 0o700)
        env = self.clean_env(STATE_DIRECTORY=state)
        rc, out, err = run("statherd-agent", "--check-config", "--token-file", self.token,
                           env=env)
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)
        # The server takes its WAL there: start it, and its files appear in the directory.
        port = harness.free_port()
        server = subprocess.Popen([harness.binary("statherd-server"), "--token-file",
                                   self.token, "--listen", f"127.0.0.1:{port}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        try:
            harness.wait_for(lambda: harness.port_open("127.0.0.1", port) or
                             server.poll() is not None, 30, what="the server's port")
            if server.poll() is not None:
                self.fail("the server exited: " + server.stderr.read().decode())
            self.assertNotEqual(os.listdir(state), [])
        finally:
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=30)
        self.assertNotIn(b"no state_dir", err)

    def test_non_root_user_gets_xdg_state(self):
        home = os.path.join(self.tmp, "home")
        os.mkdir(home)
        user = None
        if os.geteuid() == 0:  # as root the default is /var/lib: run as nobody
            user = pwd.getpwnam("nobody")
            os.chown(home, user.pw_uid, -1)
            os.chmod(self.tmp, 0o755)
            os.chmod(self.token, 0o644)
        env = self.clean_env(HOME=home)
        rc, out, err = run("statherd-agent", "--check-config", "--token-file", self.token,
                           env=env, user=user)
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)
        self.assertTrue(os.path.isdir(os.path.join(home, ".local", "state", "statherd-agent")))
        env["XDG_STATE_HOME"] = os.path.join(home, "xdg")
        rc, out, err = run("statherd-agent", "--check-config", "--token-file", self.token,
                           env=env, user=user)
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)
        self.assertTrue(os.path.isdir(os.path.join(home, "xdg", "statherd-agent")))
        rc, out, err = run("statherd-server", "--check-config", "--token-file", self.token,
                           env=env, user=user)
        self.assertEqual((rc, out), (0, "configuration ok\n"), err)


class OnceNothingMatchedTest(CliTestCase):
    def test_says_what_was_searched(self):
        glob = os.path.join(self.tmp, "none", "*.mmstats")
        v2 = os.path.join(self.tmp, "none", "*.statherd")
        rc, out, err = run("statherd-agent", "--once", "--mmstats-glob", glob, "--v2-glob", v2)
        self.assertEqual((rc, out), (0, ""), err)
        self.assertIn("statherd-agent: warning: nothing to read", err)
        self.assertIn(f"\n  mmstats_v1 {glob}\n", err)
        self.assertIn(f"\n  statherd_v2 {v2}\n", err)
        self.assertIn("\nhint: ", err)

    def test_no_next_scrape_promise(self):
        stats = os.path.join(self.tmp, "stats")
        os.mkdir(stats)
        open(os.path.join(stats, "app-1-1.mmstats"), "w").close()  # empty: an error
        rc, out, err = run("statherd-agent", "--once", "--mmstats-glob",
                           os.path.join(stats, "*.mmstats"))
        self.assertIn("empty file", err)
        self.assertNotIn("next scrape", err)
        self.assertNotIn("nothing to read", err)


if __name__ == "__main__":
    unittest.main()
