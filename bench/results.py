"""One figure of the benchmark and the file they are all written to."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_FILE = Path(__file__).resolve().parent.parent / "bench-results.json"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: float | None
    better: str  # "higher" or "lower"
    note: str = ""

    @property
    def meets_target(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target


def median_rate(work: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Run ``work`` (which returns how many items it processed) and give the median rate/s."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = work()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates), rates


def write(figures: list[Figure], path: Path = RESULTS_FILE) -> None:
    """Merge ``figures`` into the results file (figures of benchmarks not run are kept)."""
    existing: list[dict[str, object]] = []
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = []
    names = {f.name for f in figures}
    merged = [row for row in existing if row.get("name") not in names]
    merged += [asdict(f) for f in figures]
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
