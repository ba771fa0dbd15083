"""Helpers every benchmark shares: timing, ratios and the machine line of the header."""

from __future__ import annotations

import gc
import math
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: Opening hours given to synthetic devices, and how often each occurs (~30 % are 24/7).
#: Shared so every benchmark's synthetic devices keep the same hours.
HOURS_POOL: tuple[tuple[str, float], ...] = (
    ("24/7", 0.30),
    ("Mo-Fr 08:00-15:00", 0.15),
    ("Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00", 0.15),
    ("Mo-Sa 07:00-22:00", 0.15),
    ("Mo-Fr 08:00-21:00; Sa 09:00-14:00", 0.10),
    ("Mo-Fr 16:00-21:00; Sa,Su 10:00-14:00", 0.05),
    ("Sa,Su 10:00-14:00", 0.05),
    ("Mo-Su 09:00-21:00", 0.05),
)


def best_of(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best wall-clock time (s) of ``repeats`` calls, and the last call's result."""
    best = math.inf
    result: T
    for _ in range(max(1, repeats)):
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def ratio(ours: float, peer: float) -> str:
    """``ours / peer``, with two significant digits when it is small."""
    r = ours / peer if peer > 0 else math.inf
    return f"{r:.2g}" if r < 0.1 else f"{r:.2f}"


def yes(flag: bool) -> str:
    """``yes`` / ``NO`` (capitals, so a mismatch stands out)."""
    return "yes" if flag else "NO"


def machine_line() -> str:
    """``# machine: Linux x86_64, <CPU model>, nproc N``."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        cpuinfo = []
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    return (
        f"# machine: {platform.system()} {platform.machine()}, {cpu}, "
        f"nproc {len(os.sched_getaffinity(0))}"
    )


def git_describe(root: Path) -> str:
    """``git describe --always --dirty`` of the tree at ``root`` (``unknown`` without git)."""
    done = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def peak_memory_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
