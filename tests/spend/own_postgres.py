"""A PostgreSQL server of the test's own, to stop and start under a running proxy (never the shared
one of the suite). Same approach as scripts/pg-redis.sh: Debian's binaries, ``initdb`` as the
``postgres`` user when running as root, sockets and data in a temp dir, loopback only."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if found:
        return found[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    raise RuntimeError("PostgreSQL server binaries not found (scripts/pg-redis.sh installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnPostgres:
    """Data and sockets in a fresh directory of /tmp (the ``postgres`` user must reach it, which a
    pytest ``tmp_path`` under root's 0700 directory does not allow); ``cleanup()`` removes it."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="trioproxy-spend-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.bin = _bindir()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, text=True)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def init(self) -> None:
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        # fsync off (a process crash keeps the page cache) but synchronous_commit ON: an immediate
        # stop is a crash, and with asynchronous commit PostgreSQL forgets commits it acknowledged
        opts = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.base / "log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
