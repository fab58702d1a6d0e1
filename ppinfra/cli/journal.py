"""The folder run's journal: one JSON line per event, so an interrupted run resumes without paying twice.

Events: ``sending`` (a submit is about to go out), ``accepted`` (the server
gave a task id: the task will be billed),
``done`` (its files are written), ``failed`` (over; a rerun may try afresh).
Each line is flushed and synced before the run moves on, so a kill loses at
most the line being written, and a half-written last line is ignored. Lines
carry the run's ``job`` key: a journal from another prompt or model in the
same folder is not taken for this one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Dict, List, Optional


class Journal:
    """Append-only JSON lines at ``path``; thread-safe. ``fresh`` starts it over
    (the old file is replaced)."""

    def __init__(self, path: str, job_key: str, fresh: bool = False) -> None:
        self.path = path
        self.job_key = job_key
        self._lock = threading.Lock()
        if fresh and os.path.exists(path):
            os.replace(path, path + ".old")
        self._end_cut_line()

    def _end_cut_line(self) -> None:
        """Close a line a kill cut short, so the next event does not glue onto it and get lost with it."""
        try:
            with open(self.path, "rb+") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
        except FileNotFoundError:
            pass

    def load(self) -> Dict[str, Dict[str, Any]]:
        """item key -> its latest event for this job: {"state": accepted|done|failed, "task_id", ...}."""
        latest: Dict[str, Dict[str, Any]] = {}
        try:
            with open(self.path, "r", encoding="utf-8") as fh:
                lines = fh.readlines()
        except FileNotFoundError:
            return latest
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # the line a kill cut short
            if isinstance(rec, dict) and rec.get("job") == self.job_key and isinstance(rec.get("item"), str):
                latest[rec["item"]] = rec
        return latest

    def sending(self, item: str) -> None:
        """Before a submit: if the run dies before ``accepted``, the next run can say the task may exist."""
        self._append({"state": "sending", "item": item})

    def accepted(self, item: str, task_id: str, image_num: int) -> None:
        self._append({"state": "accepted", "item": item, "task_id": task_id, "image_num": image_num})

    def done(self, item: str, task_id: str, files: List[str], seed: Optional[int]) -> None:
        self._append(
            {
                "state": "done",
                "item": item,
                "task_id": task_id,
                "files": [os.path.basename(f) for f in files],
                "seed": seed,
            }
        )

    def failed(self, item: str, task_id: Optional[str], error: str) -> None:
        self._append({"state": "failed", "item": item, "task_id": task_id, "error": error[:500]})

    def _append(self, record: Dict[str, Any]) -> None:
        record = {**record, "job": self.job_key, "at": round(time.time(), 3)}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
