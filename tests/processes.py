"""adserver's own commands run as real processes, as an operator's service manager runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import OPS_TOKEN, SECRET
from tests.waiting import free_port, wait_for


def adserver_env(database_url: str, base_url: str, spool_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of one adserver process: the settings an env file would hold."""
    return {
        **os.environ,
        "ADSERVER_DATABASE_URL": database_url,
        "ADSERVER_SECRET_KEY": SECRET,
        "ADSERVER_BASE_URL": base_url,
        "ADSERVER_SCHEDULER": "off",
        "ADSERVER_SPOOL_DIR": str(spool_dir),
        "ADSERVER_METRICS_TOKEN": OPS_TOKEN,
        **extra,
    }


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One ``adserver`` command to completion, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "adserver.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class AdserverProcess:
    """A long-running ``adserver`` command (``serve``, ``scheduler``) in its own process group,
    logging to a file; ``stop`` is SIGTERM, as systemd sends."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    #: A command the server runs under, such as ``setpriv`` to drop root.
    prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait_healthy: bool = True) -> AdserverProcess:
        args = [a.replace("{port}", str(self.port)) for a in self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "adserver.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait_healthy:
            wait_for(self._healthy, f"{self.url} to answer /healthz", seconds=60)
        return self

    def _healthy(self) -> bool:
        self.assert_running()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def assert_running(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"adserver {self.args[0]} exited:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
                raise
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
