"""Injected failures: Fault (what, where, how often) and FaultBook (the armed ones)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """status: answer `status` with ApiErrors; hang: never answer; drop: close the
    connection without an answer; latency: answer `seconds` late."""

    STATUS = "status"
    HANG = "hang"
    DROP = "drop"
    LATENCY = "latency"


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure for requests whose path starts with `path`; `count` None = until cleared."""

    path: str
    kind: FaultKind
    status: int = 503
    seconds: float = 0.0
    count: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if not self.path.startswith("/"):
            raise ValueError("path: must start with /")
        if not 200 <= self.status <= 599:
            raise ValueError("status: must be 200..599")
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError("seconds: must be a number >= 0")
        if self.count is not None and self.count < 1:
            raise ValueError("count: must be >= 1 or null")

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Fault:
        """From the POST /sim/faults body; ValueError names the bad field."""
        path, kind = raw.get("path"), raw.get("kind")
        if not isinstance(path, str) or kind not in tuple(FaultKind):
            raise ValueError("path and kind (status|hang|drop|latency) are required")
        status, seconds, count = raw.get("status", 503), raw.get("seconds", 0.0), raw.get("count")
        if not isinstance(status, int) or isinstance(status, bool):
            raise ValueError("status: must be an integer")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError("seconds: must be a number")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
            raise ValueError("count: must be an integer or null")
        return cls(path, FaultKind(str(kind)), status, float(seconds), count)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind.value,
            "status": self.status,
            "seconds": self.seconds,
            "count": self.count,
        }


@dataclass(slots=True)
class Armed:
    fault: Fault
    left: int | None


class FaultBook:
    """Faults in injection order; each request takes the first one whose path matches."""

    def __init__(self) -> None:
        self.armed: list[Armed] = []

    def add(self, fault: Fault) -> None:
        self.armed.append(Armed(fault, fault.count))

    def clear(self) -> None:
        self.armed.clear()

    def take(self, path: str) -> Fault | None:
        """The fault for a request to `path`, counting it against the fault's `count`."""
        for armed in self.armed:
            if path.startswith(armed.fault.path):
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left == 0:
                        self.armed.remove(armed)
                return armed.fault
        return None

    def active(self) -> list[dict[str, object]]:
        """The armed faults as JSON, `count` being what is left."""
        return [{**a.fault.to_json(), "count": a.left} for a in self.armed]
