"""The real graphite-web (Debian graphite-web 1.1.x) for the integration tests and benches.

graphite-web reads the Whisper files of a carbon-cache (carbon_fixture.CarbonCache) through
its own settings module written to a temp dir and named by GRAPHITE_SETTINGS_MODULE (UTC,
DEFAULT_XFILES_FACTOR 0, a sqlite database made by `graphite-manage migrate`), served by
Django's development server on a free loopback port. Requests then go to both servers.
"""

import os
import sys

import harness

PYTHON = "/usr/bin/python3"  # Debian's python3 with python3-django, not the first on PATH


class GraphiteWeb:
    def __init__(self, workdir, whisper_dir, carbonlink=None):
        self.root = os.path.join(workdir, "graphite-web")
        os.makedirs(os.path.join(self.root, "log"), exist_ok=True)
        self.workdir = workdir
        self.whisper_dir = whisper_dir
        # "127.0.0.1:PORT" of the carbon-cache's cache query port: points carbon holds but has
        # not written yet are read from it, as a production graphite-web reads them.
        self.carbonlink = carbonlink
        self.port = harness.free_port()
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _env(self):
        return {"GRAPHITE_SETTINGS_MODULE": "statherd_gw_settings",
                "DJANGO_SETTINGS_MODULE": "graphite.settings",
                "PYTHONPATH": self.root}

    def _write_settings(self):
        db = os.path.join(self.root, "graphite.db")
        with open(os.path.join(self.root, "statherd_gw_settings.py"), "w") as f:
            f.write(f"""SECRET_KEY = 'statherd-integration-test'
TIME_ZONE = 'UTC'
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
STORAGE_DIR = {self.root!r}
WHISPER_DIR = {self.whisper_dir!r}
STANDARD_DIRS = [{self.whisper_dir!r}]
LOG_DIR = {os.path.join(self.root, 'log')!r}
INDEX_FILE = {os.path.join(self.root, 'index')!r}
DEFAULT_XFILES_FACTOR = 0
CARBONLINK_HOSTS = {[self.carbonlink] if self.carbonlink else []!r}
DATABASES = {{'default': {{'NAME': {db!r}, 'ENGINE': 'django.db.backends.sqlite3',
                         'USER': '', 'PASSWORD': '', 'HOST': '', 'PORT': ''}}}}
""")

    def start(self, timeout=60):
        self._write_settings()
        migrate = harness.ManagedProcess(
            "graphite-manage-migrate", [PYTHON, "/usr/bin/graphite-manage", "migrate",
                                        "--noinput"], self.workdir, env=self._env())
        code = migrate.wait(timeout=120)
        if code != 0:
            raise AssertionError(f"graphite-manage migrate exited with {code}\n"
                                 f"{migrate.log_tail()}")
        argv = [PYTHON, "-m", "django", "runserver", "--noreload", "--nothreading",
                f"127.0.0.1:{self.port}"]
        self.process = harness.ManagedProcess("graphite-web", argv, self.workdir,
                                              env=self._env())
        harness.wait_for_port("127.0.0.1", self.port, timeout, process=self.process)
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop(timeout=15)


if __name__ == "__main__":
    sys.exit("a fixture module: import it")
