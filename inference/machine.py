"""What this machine gives a process: the CPUs it may use and the physical memory, defined once."""

from __future__ import annotations

import os

_FALLBACK_PHYSICAL = 8 * 1024**3  # when the platform cannot tell its physical memory


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as set by taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def physical_memory() -> int:
    """This machine's physical memory in bytes (8 GiB where the platform cannot tell)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_PHYSICAL


def runnable_elsewhere() -> int:
    """How many threads besides the caller are running or waiting for a CPU right now, machine-wide (Linux: the
    running count in /proc/loadavg, which includes the caller); 0 where the platform cannot tell."""
    try:
        with open("/proc/loadavg", encoding="ascii") as loadavg:
            return max(0, int(loadavg.read().split()[3].split("/")[0]) - 1)
    except (OSError, IndexError, ValueError):
        return 0
