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


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``cmd`` run on CPU ``cpu`` only (as it is with None, or without taskset)."""
    if cpu is None or not shutil.which("taskset"):
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


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
    far. Raises if the process is gone (a zombie has no figures): a server killed for its
    memory is what the memory benches exist to catch, not a number to average."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        raise RuntimeError(f"process {pid} is gone: {exc}") from exc
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no {field} (it has exited)")
