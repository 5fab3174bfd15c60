"""A real ``trioproxy run`` process on a free loopback port, for integration tests.

Started exactly as a user starts it (``python -m trioproxy run CONFIG --port 0``); the port comes
from the line the CLI prints once Hypercorn is listening. stderr (the proxy's log) is kept in a
file so tests can assert what was, and was not, logged (e.g. that no key leaked).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ProxyProcess", "write_config"]

_LISTENING = "trioproxy listening on "


def write_config(directory: Path, config: dict[str, Any] | str, name: str = "config.yaml",
                 files: dict[str, str] | None = None) -> Path:
    """Write a config (dict → YAML) and any handler files next to it; return the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    for filename, content in (files or {}).items():
        (directory / filename).write_text(content)
    path = directory / name
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


class ProxyProcess:
    def __init__(self, config_path: Path | None, *, args: list[str] | None = None,
                 env: dict[str, str] | None = None, log_level: str = "info", start_timeout: float = 30.0,
                 cwd: Path | None = None) -> None:
        self.config_path = config_path
        log_dir = config_path.parent if config_path else Path(tempfile.mkdtemp(prefix="trioproxy-test-"))
        self.log_path = log_dir / f"proxy-{os.getpid()}-{id(self)}.log"
        command = [sys.executable, "-m", "trioproxy", "run"]
        if config_path is not None:
            command.append(str(config_path))
        command += ["--host", "127.0.0.1", "--port", "0", "--log-level", log_level, *(args or [])]
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log_file, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=str(cwd or log_dir),
            # a session of its own, so kill() reaches `--workers N` worker processes too
            start_new_session=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.process.stdout is not None
            for raw in self.process.stdout:
                lines.put(raw.decode(errors="replace"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self.base_url = ""
        while True:
            try:
                line = lines.get(timeout=start_timeout)
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"trioproxy did not start within {start_timeout} s:\n{self.logs()}") from None
            if line is None:
                self.process.wait(timeout=10)
                raise RuntimeError(f"trioproxy exited with {self.process.returncode} before listening:\n{self.logs()}")
            if line.startswith(_LISTENING):
                self.base_url = line[len(_LISTENING):].split()[0].strip()
                break

    @property
    def url(self) -> str:
        """The OpenAI base URL (``…/v1``)."""
        return f"{self.base_url}/v1"

    def logs(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log_file.close()

    def kill(self) -> None:
        """SIGKILL the proxy and every process of its session (workers outlive a killed supervisor)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if not self._log_file.closed:
            self._log_file.close()

    def __enter__(self) -> ProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
