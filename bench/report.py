"""The output side of ``bench/run.py``: the machine note, the Markdown table and the block in
docs/performance.md."""

from __future__ import annotations

import os
import platform
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine_note() -> str:
    import torch  # already loaded by the bench

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.system()} {platform.release()}; load average at the end {load} (other work shared "
        "the machine)"
    )


def render_table(rows: List[Dict[str, str]]) -> str:
    lines = ["| Figure | Pack | Compared with | Target | Met |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['pack']} | {r['other']} | {r['target']} | {r['met']} |")
    return "\n".join(lines)


def write_readme(block: str) -> None:
    """Replace the bench block of ``docs/performance.md`` (the README links that page)."""
    path = os.path.join(ROOT, "docs", "performance.md")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{block}\n{end}{tail}"
    else:
        text = text.rstrip("\n") + f"\n\n## Measured figures\n\n{start}\n{block}\n{end}\n"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
