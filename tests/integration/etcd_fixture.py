"""A real etcd (Debian etcd-server 3.4) for the integration tests, and a few reads through its
JSON gateway (keys and values base64, as statherd's own client speaks it).

One member on free 127.0.0.1 client and peer ports, its data in a temp dir; ready when its
client port answers /health. stop() and kill() act on the pid this fixture started.
"""

import base64
import json
import os
import shutil

import harness


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _unb64(text):
    return base64.b64decode(text).decode() if text else ""


class Etcd:
    def __init__(self, workdir, port=None):
        self.workdir = os.path.join(workdir, "etcd")
        self.data_dir = os.path.join(self.workdir, "data")
        os.makedirs(self.workdir, exist_ok=True)
        self.port = port or harness.free_port()
        self.peer_port = harness.free_port()
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        client = self.url
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [etcd, "--name", "itest", "--data-dir", self.data_dir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"itest={peer}", "--logger", "zap",
                "--log-outputs", "stderr"]
        self.process = harness.ManagedProcess("etcd", argv, self.workdir)

        def healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"etcd exited with {self.process.returncode}\n"
                                     f"{self.process.log_tail()}")
            status, body = harness.http_request(self.url + "/health", timeout=2)
            return status == 200 and json.loads(body).get("health") == "true"
        harness.wait_for(healthy, timeout, what="etcd /health")
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop()

    def kill(self):
        if self.process is not None:
            self.process.kill()

    def _post(self, path, request):
        status, body = harness.http_request(self.url + path, data=json.dumps(request).encode(),
                                            headers={"Content-Type": "application/json"},
                                            timeout=5)
        if status != 200:
            raise AssertionError(f"etcd {path} -> {status}: {body[:300]!r}")
        return json.loads(body)

    def get_prefix(self, prefix):
        """{key: (value, lease id)} of every key under prefix."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        answer = self._post("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end)})
        return {_unb64(kv["key"]): (_unb64(kv.get("value", "")), int(kv.get("lease", 0)))
                for kv in answer.get("kvs", [])}

    def get(self, key):
        """(value, lease id) of key, or None."""
        answer = self._post("/v3/kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs", [])
        if not kvs:
            return None
        return _unb64(kvs[0].get("value", "")), int(kvs[0].get("lease", 0))

    def lease_ttl(self, lease):
        """The seconds left on a lease (-1: expired or unknown)."""
        answer = self._post("/v3/lease/timetolive", {"ID": str(lease)})
        return int(answer.get("TTL", -1))
