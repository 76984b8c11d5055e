"""The Alertmanager webhook (payload version 4) into the alert history.

Alertmanager posts every group of alerts on change and on repeat; each alert carries
its ``fingerprint`` and ``startsAt``, which together identify one firing. A resolved
alert updates the same row with its ``endsAt``.
"""

from datetime import datetime
from typing import Dict, List, Literal

from pydantic import BaseModel, ConfigDict, Field

from boardfleet.soak.store import Alert, SoakStore

# Alertmanager's "zero" time for an alert that has not ended.
_ZERO_YEAR = 1


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: Dict[str, str] = Field(default_factory=dict)
    annotations: Dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    fingerprint: str = Field(min_length=1, max_length=128)


class WebhookPayload(BaseModel):
    """The body Alertmanager POSTs to a webhook receiver (``version: "4"``)."""

    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: List[WebhookAlert] = Field(max_length=10000)


def record(store: SoakStore, payload: WebhookPayload) -> int:
    """Store every alert of ``payload``; return how many were stored."""
    for a in payload.alerts:
        ends = a.endsAt.timestamp() if a.endsAt and a.endsAt.year > _ZERO_YEAR else None
        if a.status == "firing":
            ends = None
        labels = {_text(k): _text(v) for k, v in a.labels.items()}
        store.record_alert(Alert(
            alertname=labels.get("alertname", "unnamed"),
            severity=labels.get("severity", "none"),
            board=labels.get("board", ""),
            starts_at=a.startsAt.timestamp(),
            ends_at=ends,
            summary=_text(a.annotations.get("summary", "")),
            labels=labels), _text(a.fingerprint))
    return len(payload.alerts)


def _text(s: str) -> str:
    """Lone surrogates (valid JSON escapes, invalid UTF-8) become U+FFFD."""
    return s.encode("utf-8", "replace").decode("utf-8")
