"""Servers under test as real processes on 127.0.0.1, pinned to a core, with their memory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import cpu

REPO = Path(__file__).resolve().parent.parent
#: The server gets core 0 and the load generator core 1, when the machine has two or more.
SERVER_CPUS = "0"
LOAD_CPUS = "1"


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """``command`` restricted to ``cpus`` (e.g. "0" or "0,1"); unchanged when pinning is off."""
    if cpus is None or not can_pin():
        return command
    return ["taskset", "-c", cpus, *command]


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    #: The cores it is pinned to ("0"), None when it may run on any.
    cpus: str | None = None
    peak_rss_kb: int = 0
    _sampling: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server and every process under it (uvicorn and granian workers)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(cpu.stat_fields(stat)[1])
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def rss_kb(self) -> int:
        """Resident memory of the whole process tree now, in KiB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    @contextmanager
    def sampling_rss(self, interval: float = 0.2) -> Iterator[None]:
        """Track the tree's peak resident memory while the block runs."""
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
                stop.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager would, and wait for a graceful exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ServerFailed(RuntimeError):
    pass


def start(
    name: str,
    arguments: list[str],
    *,
    env: Mapping[str, str],
    workdir: Path,
    cpus: str | None = SERVER_CPUS,
    ready_path: str = "/healthz",
    timeout: float = 60,
) -> ServerProcess:
    """Start ``python ARGUMENTS --port P`` and wait until ``ready_path`` answers 200."""
    port = free_port()
    log = workdir / f"{name}-{port}.log"
    command = pinned([sys.executable, *arguments, "--port", str(port)], cpus)
    environment = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            env=environment,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(name, process, port, log, cpus if can_pin() else None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise ServerFailed(f"{name} did not answer {ready_path} in {timeout} s:\n{server.log_tail()}")


def adserver_command(server: str, workers: int) -> list[str]:
    return ["-m", "adserver.cli", "serve", "--server", server, "--workers", str(workers)]


def baseline_command(server: str, workers: int) -> list[str]:
    return ["-m", "bench.baseline", "--server", server, "--workers", str(workers)]


@contextmanager
def running(
    name: str,
    arguments: list[str],
    *,
    env: Mapping[str, str],
    workdir: Path,
    cpus: str | None = SERVER_CPUS,
    ready_path: str = "/healthz",
) -> Iterator[ServerProcess]:
    server = start(name, arguments, env=env, workdir=workdir, cpus=cpus, ready_path=ready_path)
    try:
        yield server
    finally:
        server.stop()
