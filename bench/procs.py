"""Start, watch and stop the servers under test (each in its own process group)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessTree:
    """A process and its descendants (uvicorn's workers), read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def pids(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _stat(int(entry))
                if stat:
                    children.setdefault(int(stat[1]), []).append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds per live process, including that of its already-reaped children."""
        out: dict[int, float] = {}
        for pid in self.pids():
            stat = _stat(pid)
            if stat:
                # utime, stime, cutime, cstime
                out[pid] = (int(stat[11]) + int(stat[12]) + int(stat[13]) + int(stat[14])) / _TICKS
        return out

    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_pid().values())

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            stat = _stat(pid)
            if stat:
                total += int(stat[21]) * _PAGE
        return total


def postmaster() -> ProcessTree | None:
    """The local PostgreSQL server's process tree (postmaster and backends), if we can see it."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _comm(int(entry)) == "postgres":
            stat = _stat(int(entry))
            if stat and _comm(int(stat[1])) != "postgres":
                return ProcessTree(int(entry))
    return None


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...] (stat(5) field 3 on)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


class Server:
    """A server subprocess we started; stopped by signalling its own process group only."""

    def __init__(self, name: str, cmd: Sequence[str], env: Mapping[str, str], port: int, health: str,
                 log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.health = health
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(list(cmd), env={**os.environ, **env}, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.tree = ProcessTree(self.proc.pid)

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log_path}:\n"
                                       + self.log_tail())
                try:
                    if client.get(self.base_url + self.health).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s; see {self.log_path}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        # The group is ours (start_new_session): it holds the server and its workers, nothing else.
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=5)
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
