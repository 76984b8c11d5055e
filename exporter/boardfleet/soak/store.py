"""Soak runs and the Alertmanager alert history, kept in one SQLite file.

The file sits next to the inventory (``soaks.sqlite`` beside ``boards.yml``), so the CLI
and the fleet service share it without a database server. Every method opens its own
connection: the CLI, the service's threads and tests may use the file at once.
"""

import json
import os
import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Dict, List

FILE_NAME = "soaks.sqlite"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    selector TEXT NOT NULL,
    boards TEXT NOT NULL,          -- JSON list of board names
    meta TEXT NOT NULL,            -- JSON object of free metadata
    started REAL NOT NULL,         -- Unix seconds
    stopped REAL                   -- NULL while the run is active
);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL,                  -- NULL while firing
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL,
    board TEXT NOT NULL,
    labels TEXT NOT NULL,          -- JSON object
    summary TEXT NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alerts_board ON alerts (board, starts_at);
"""


class SoakError(ValueError):
    """A bad run name, an unknown or finished run, an unreadable store."""


class NotFound(SoakError):
    """No such run, or no board matching a selector."""


@dataclass
class Run:
    name: str
    selector: str
    boards: List[str]
    started: float
    stopped: float | None = None
    meta: Dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.stopped is None

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "selector": self.selector, "boards": self.boards,
                "started": self.started, "stopped": self.stopped, "active": self.active,
                "meta": self.meta}


@dataclass
class Alert:
    alertname: str
    severity: str
    board: str
    starts_at: float
    ends_at: float | None
    summary: str
    labels: Dict[str, str]

    def duration(self, until: float) -> float:
        """Seconds it fired, counting a still-firing alert up to ``until``."""
        end = self.ends_at if self.ends_at is not None else until
        return max(0.0, min(end, until) - self.starts_at)


def default_path(inventory: str) -> str:
    """The store beside the inventory file."""
    return os.path.join(os.path.dirname(os.path.abspath(inventory)), FILE_NAME)


class SoakStore:
    """Runs and alerts in the SQLite file ``path`` (created on first use)."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            with self._connect() as db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SoakError("cannot open soak store %s: %s" % (path, e)) from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def _rows(self, sql: str, args: tuple = ()) -> List[sqlite3.Row]:
        try:
            with closing(self._connect()) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise SoakError("soak store %s: %s" % (self.path, e)) from None

    def _write(self, sql: str, args: tuple = ()) -> int:
        try:
            with closing(self._connect()) as db, db:
                return db.execute(sql, args).rowcount
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise SoakError("soak store %s: %s" % (self.path, e)) from None

    # Runs

    def start(self, name: str, boards: List[str], selector: str,
              meta: Dict[str, str] | None = None, now: float | None = None) -> Run:
        if not NAME_RE.match(name):
            raise SoakError("soak name %r: use 1-63 letters, digits, '.', '_' or '-'" % name)
        if not boards:
            raise SoakError("soak %r: the selector %r matches no board" % (name, selector))
        run = Run(name, selector, sorted(boards), time.time() if now is None else now,
                  None, dict(meta or {}))
        try:
            self._write("INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL)",
                        (run.name, run.selector, json.dumps(run.boards), json.dumps(run.meta),
                         run.started))
        except sqlite3.IntegrityError:
            raise SoakError("soak %r already exists (pick another name)" % name) from None
        return run

    def stop(self, name: str, now: float | None = None) -> Run:
        run = self.get(name)
        if not run.active:
            raise SoakError("soak %r was already stopped" % name)
        run.stopped = max(run.started, time.time() if now is None else now)
        self._write("UPDATE runs SET stopped = ? WHERE name = ?", (run.stopped, name))
        return run

    def get(self, name: str) -> Run:
        for row in self._rows("SELECT * FROM runs WHERE name = ?", (name,)):
            return _run(row)
        raise NotFound("no soak run named %r (see `boardfleet soak list`)" % name)

    def runs(self) -> List[Run]:
        return [_run(r) for r in self._rows("SELECT * FROM runs ORDER BY started, name")]

    def active(self) -> List[Run]:
        return [r for r in self.runs() if r.active]

    # Alert history

    def record_alert(self, alert: Alert, fingerprint: str) -> None:
        """Insert or update (same fingerprint and start: a resolve or a repeat)."""
        self._write(
            "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (fingerprint, starts_at) DO UPDATE SET ends_at = excluded.ends_at, "
            "labels = excluded.labels, summary = excluded.summary",
            (fingerprint, alert.starts_at, alert.ends_at, alert.alertname, alert.severity,
             alert.board, json.dumps(alert.labels, sort_keys=True), alert.summary))

    def alerts(self, start: float, end: float, boards: List[str] | None = None) -> List[Alert]:
        """Alerts that fired at some time within [start, end], of ``boards`` if given."""
        rows = self._rows("SELECT * FROM alerts WHERE starts_at <= ? AND "
                          "(ends_at IS NULL OR ends_at >= ?) ORDER BY starts_at", (end, start))
        wanted = set(boards) if boards is not None else None
        return [Alert(r["alertname"], r["severity"], r["board"], r["starts_at"], r["ends_at"],
                      r["summary"], json.loads(r["labels"]))
                for r in rows if wanted is None or r["board"] in wanted]


def _run(row: sqlite3.Row) -> Run:
    return Run(row["name"], row["selector"], json.loads(row["boards"]), row["started"],
               row["stopped"], json.loads(row["meta"]))
