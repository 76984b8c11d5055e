"""Agentless probe sharding: several fleet service replicas, each probing its share.

A board belongs to the replica with the highest hash of ``(board name, replica index)``
(rendezvous hashing): every replica decides alone, from the name only, and going from N
to N+1 replicas moves about 1/(N+1) of the boards, never between the old replicas.
A replica lists only its boards in ``/sd?mode=agentless`` (each group tagged
``__meta_boardfleet_replica`` for relabelling to that replica's address) and answers
``/probe`` for another replica's board with 421 Misdirected Request.
"""

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, List

META_LABEL = "__meta_boardfleet_replica"


def _weight(board: str, replica: int) -> int:
    digest = hashlib.blake2b(("%s\0%d" % (board, replica)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(board: str, replicas: int) -> int:
    """Index (0-based) of the replica that probes ``board`` among ``replicas``."""
    return max(range(replicas), key=lambda r: _weight(board, r))


@dataclass(frozen=True)
class Replica:
    """This service's place among ``count`` replicas (the default: the only one)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError("replica %d/%d: need 0 <= I < N" % (self.index, self.count))

    @classmethod
    def parse(cls, spec: str) -> "Replica":
        """``"I/N"``: replica I (0-based) of N, as ``boardfleet serve --replica`` takes it."""
        index, sep, count = spec.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError("--replica %r: expected I/N, e.g. 0/3" % spec)
        return cls(int(index), int(count))

    def owns(self, board: str) -> bool:
        return self.count == 1 or owner(board, self.count) == self.index

    def select(self, groups: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """This replica's agentless SD target groups (targets are board names)."""
        if self.count == 1:
            return groups
        return [{**g, "labels": {**g["labels"], META_LABEL: str(self.index)}}
                for g in groups if all(self.owns(t) for t in g["targets"])]
