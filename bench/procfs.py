"""What the benches read about processes: CPU seconds (whole process or thread by thread) and
memory, from ``/proc``; a free port and pinning to a CPU, to start them."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int) -> list[str]:
    return (["taskset", "-c", str(cpu)] if shutil.which("taskset") else []) + cmd


def read_stat(path: Path) -> tuple[str, float] | None:
    """The name and user + system CPU seconds in a ``/proc`` stat file (a process's counts
    its threads'), or None if unreadable."""
    try:
        name, fields = path.read_text().split("(", 1)[1].rsplit(")", 1)
    except (OSError, IndexError, ValueError):
        return None
    values = fields.split()
    return name, (int(values[11]) + int(values[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far (0 if unreadable)."""
    stat = read_stat(Path(f"/proc/{pid}/stat"))
    return 0.0 if stat is None else stat[1]


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread's name and user + system CPU seconds so far (empty if unreadable)."""
    threads = {int(task.name): read_stat(task / "stat")
               for task in Path(f"/proc/{pid}/task").glob("*")}
    return {tid: stat for tid, stat in threads.items() if stat is not None}


def memory_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of ``/proc/<pid>/status`` in MiB: ``VmRSS`` now, ``VmHWM`` its peak so
    far; NaN if the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")
