"""docs/metrics.md, read as the contract it is: one `## <component>` heading per scrape job, under it a table
whose rows are | `metric_name` | type | labels | meaning |."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
JOBS = ("operator", "gateway", "functions", "iris-server")
ROW = re.compile(r"^\|\s*`(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*(?P<type>[a-z]+)\s*\|")
JOB_IN_HEADING = re.compile(r"job `([a-z-]+)`")


@dataclass(frozen=True)
class Documented:
    job: str
    name: str
    type: str

    def series_names(self) -> set[str]:
        """The names Prometheus stores for it: a histogram is its _bucket, _sum and _count series."""
        if self.type == "histogram":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        if self.type == "summary":
            return {f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


def heading_job(heading: str) -> str | None:
    """The job a heading is about: the one it names as job `x`, else the only job name among its words."""
    named = JOB_IN_HEADING.search(heading)
    if named:
        return named.group(1)
    words = set(re.findall(r"[a-z-]+", heading.lower()))
    matches = [job for job in JOBS if job in words]
    return matches[0] if len(matches) == 1 else None


def parse(text: str) -> list[Documented]:
    """Every metric row, with the job of the heading above it; ValueError for a row under no job's heading."""
    rows, job, heading = [], None, None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            heading, job = line[3:].strip(), heading_job(line[3:])
            continue
        row = ROW.match(line)
        if not row:
            continue
        if job is None:
            raise ValueError(f"line {number}: metric {row['name']} under {heading!r}, which names no job of {JOBS}")
        rows.append(Documented(job, row["name"], row["type"]))
    return rows
