"""One open session per board, reconnected with exponential backoff.

A board that failed is not dialled again until its backoff expires (0.5 s doubling to
30 s): probes of a dead board fail at once instead of each waiting for a TCP timeout.
"""

import logging
import threading
import time
from typing import Callable, Dict, Tuple

from boardfleet.inventory import Board
from boardfleet.transports import Session, TransportError
from boardfleet.transports.secrets import Credentials, Secrets

log = logging.getLogger("boardfleet.pool")

# connect(board, credentials, timeout) -> a logged-in Session
Connector = Callable[[Board, Credentials, float], Session]


class _Slot:
    __slots__ = ("failures", "key", "lock", "retry_at", "session")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.session: Session | None = None
        self.key: Tuple[str, ...] = ()
        self.failures = 0
        self.retry_at = 0.0


class SessionPool:
    """Runs commands on boards over pooled (or, for comparison, fresh) sessions."""

    def __init__(self, connectors: Dict[str, Connector], secrets: Secrets,
                 pooled: bool = True, backoff_base: float = 0.5,
                 backoff_max: float = 30.0) -> None:
        self.connectors = connectors
        self.secrets = secrets
        self.pooled = pooled
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._slots: Dict[str, _Slot] = {}
        self._lock = threading.Lock()

    def run(self, board: Board, command: str, timeout: float) -> str:
        """Run ``command`` on ``board`` within ``timeout`` seconds; raise TransportError."""
        deadline = time.monotonic() + timeout
        with self._lock:
            slot = self._slots.setdefault(board.name, _Slot())
        if not slot.lock.acquire(timeout=max(0.0, timeout)):
            raise TransportError("%s: another probe of this board is still running" % board.name)
        try:
            return self._run_locked(slot, board, command, deadline)
        finally:
            slot.lock.release()

    def _run_locked(self, slot: _Slot, board: Board, command: str, deadline: float) -> str:
        key = (board.transport, board.host, str(board.port), board.user)
        if slot.session is not None and slot.key != key:
            self._drop(slot)
        reused = slot.session is not None
        if not reused:
            self._connect(slot, board, key, deadline)
        assert slot.session is not None
        try:
            out = slot.session.run(command, deadline - time.monotonic())
        except TransportError:
            self._drop(slot)
            left = deadline - time.monotonic()
            # A pooled session may have died with a reboot: one fresh try if time is left.
            if not reused or left <= 0:
                self._failed(slot)
                raise
            self._connect(slot, board, key, deadline)
            try:
                out = slot.session.run(command, deadline - time.monotonic())
            except TransportError:
                self._drop(slot)
                self._failed(slot)
                raise
        slot.failures = 0
        if not self.pooled:
            self._drop(slot)
        return out

    def _connect(self, slot: _Slot, board: Board, key: Tuple[str, ...],
                 deadline: float) -> None:
        now = time.monotonic()
        if now < slot.retry_at:
            raise TransportError("%s: unreachable, next attempt in %.1fs"
                                 % (board.name, slot.retry_at - now))
        left = deadline - now
        if left <= 0:
            raise TransportError("%s: no time left to connect" % board.name)
        connector = self.connectors.get(board.transport)
        if connector is None:
            raise TransportError("%s: no %s transport" % (board.name, board.transport))
        try:
            slot.session = connector(board, self.secrets.for_board(board.name), left)
        except TransportError as e:
            self._failed(slot)
            log.info("connect failed: %s", e)
            raise
        slot.key = key

    def _failed(self, slot: _Slot) -> None:
        slot.failures += 1
        delay = min(self.backoff_max, self.backoff_base * 2 ** (slot.failures - 1))
        slot.retry_at = time.monotonic() + delay

    @staticmethod
    def _drop(slot: _Slot) -> None:
        if slot.session is not None:
            slot.session.close()
            slot.session = None

    def forget(self, name: str) -> None:
        """Close a removed board's session."""
        with self._lock:
            slot = self._slots.pop(name, None)
        if slot is not None:
            with slot.lock:
                self._drop(slot)

    def close(self) -> None:
        with self._lock:
            names = list(self._slots)
        for name in names:
            self.forget(name)
