"""The agent's spool directory on a small tmpfs that the chaos test fills once.

mount -t tmpfs needs root (CAP_SYS_ADMIN). The mount is undone by unmount(), which the test
registers as a cleanup and which also runs at interpreter exit (atexit) and on SIGTERM/SIGINT of
the test process, so no exit path leaves it mounted (only a SIGKILL of the test itself can).
The ballast is a file of zeros written until ENOSPC and topped up while the episode lasts (the
agent frees space whenever a batch is acknowledged); removing it ends the episode.
"""

import atexit
import errno
import os
import signal
import subprocess

CHUNK = b"\0" * 65536


def can_mount():
    return os.geteuid() == 0


class SpoolFilesystem:
    def __init__(self, mountpoint, size_bytes):
        self.mountpoint = mountpoint
        self.size_bytes = size_bytes
        self.mounted = False
        self.ballast_path = os.path.join(mountpoint, "ballast")
        self.ballast = None
        self.episodes = 0
        self.top_ups = 0
        self._old_handlers = {}

    @property
    def spool_dir(self):
        return os.path.join(self.mountpoint, "spool")

    def mount(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes},mode=0700",
                        "statherd-chaos-spool", self.mountpoint], check=True, capture_output=True)
        self.mounted = True
        atexit.register(self.unmount)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)
        return self

    def _on_signal(self, signum, frame):
        self.unmount()
        old = self._old_handlers.get(signum)
        if callable(old):
            old(signum, frame)
        else:
            raise SystemExit(128 + signum)

    def unmount(self):
        self.remove_ballast()
        if self.mounted:
            # Lazy: the agent may still hold a file open if the caller failed to stop it.
            subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
            self.mounted = False
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers.clear()

    def fill(self):
        """Starts an episode: write zeros until the filesystem is full."""
        self.episodes += 1
        self.ballast = open(self.ballast_path, "wb", buffering=0)
        self.top_up()

    def top_up(self):
        """Writes until ENOSPC again (space the agent freed is taken back)."""
        if self.ballast is None:
            return
        try:
            while True:
                self.ballast.write(CHUNK)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        # Smaller writes for the last partial chunk, so the filesystem is really full.
        for size in (4096, 512, 1):
            try:
                while True:
                    self.ballast.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        self.top_ups += 1

    @property
    def filling(self):
        return self.ballast is not None

    def remove_ballast(self):
        if self.ballast is not None:
            self.ballast.close()
            self.ballast = None
        try:
            os.unlink(self.ballast_path)
        except FileNotFoundError:
            pass

    def free_bytes(self):
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize
