"""The schema of ``prometheus/thresholds.yml``, declared once.

Every table and key of the file is a pydantic model here: unknown keys are refused,
durations must be Prometheus durations, ratios lie in 0..1 and sizes are positive.
The rule generator, the dashboards and the soak criteria all read the file through
:func:`load`, so a mistake is reported once, naming the file, the key and the cause.
"""

import math
import re
from pathlib import Path
from typing import Annotated, Any, Callable, Dict, List, Literal, Tuple, Type, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)

# Prometheus's duration syntax (model.ParseDuration): units largest first, each once.
_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60),
          ("s", 1), ("ms", 0.001))
_DURATION_RE = re.compile("".join(r"(?:(?P<%s>[0-9]+)%s)?" % (u, u) for u, _ in _UNITS))
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.:-]+")
_URL_RE = re.compile(r"https?://[^\s?#]+")


class ThresholdsError(ValueError):
    """The thresholds file cannot be read, or holds an unknown key or a bad value."""


def seconds(d: str) -> float:
    """Seconds in a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``0``)."""
    if d == "0":
        return 0
    m = _DURATION_RE.fullmatch(d) if isinstance(d, str) else None
    if not m or not any(m.groups()):
        raise ThresholdsError("%r is not a Prometheus duration (such as 30s, 5m, 4h, 1d, "
                              "1h30m)" % (d,))
    total = sum(int(n) * scale for (_, scale), n in zip(_UNITS, m.groups(), strict=True) if n)
    return int(total) if total == int(total) else total


def _duration(positive: bool) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str):
            raise ValueError("must be a duration such as 5m, not %s" % _kind(v))
        try:
            s = seconds(v)
        except ThresholdsError as e:
            raise ValueError(str(e)) from None
        if positive and s <= 0:
            raise ValueError("must be a duration longer than zero")
        return v
    return check


def _number(lo: float, hi: float = math.inf, above: bool = False,
            integer: bool = False) -> Callable[[Any], Union[int, float]]:
    """A YAML number (kept int or float as written, so rule text does not change)."""
    def check(v: Any) -> Union[int, float]:
        ok = (int,) if integer else (int, float)
        if isinstance(v, bool) or not isinstance(v, ok):
            raise ValueError("must be %s, not %s" % (
                "a whole number" if integer else "a number",
                v if isinstance(v, float) else _kind(v)))
        if not math.isfinite(v) or v < lo or (above and v == lo) or v > hi:
            raise ValueError("must be %s, not %s" % (_range(lo, hi, above), v))
        return v
    return check


def _range(lo: float, hi: float, above: bool) -> str:
    if hi == 1 and lo == 0:
        return "a ratio between 0 and 1"
    if hi != math.inf:
        return "between %g and %g" % (lo, hi)
    return "greater than %g" % lo if above else "at least %g" % lo


def _text(regex: "re.Pattern[str]", what: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not regex.fullmatch(v):
            raise ValueError("must be %s, not %s" % (what, _kind(v) if not isinstance(v, str)
                                                     else repr(v[:60])))
        return v
    return check


def _kind(v: Any) -> str:
    names = {type(None): "empty", bool: "true/false", str: "text", list: "a list",
             dict: "a mapping", int: "a number", float: "a number"}
    return names.get(type(v), type(v).__name__)


Number = Union[int, float]
Duration = Annotated[str, PlainValidator(_duration(positive=False))]
Window = Annotated[str, PlainValidator(_duration(positive=True))]
Ratio = Annotated[Number, PlainValidator(_number(0, 1))]
Positive = Annotated[Number, PlainValidator(_number(0, above=True))]
NonNegative = Annotated[Number, PlainValidator(_number(0))]
Count = Annotated[int, PlainValidator(_number(1, integer=True))]
Whole = Annotated[int, PlainValidator(_number(0, integer=True))]
LabelName = Annotated[str, PlainValidator(_text(_LABEL_RE, "a label name such as rack"))]
Word = Annotated[str, PlainValidator(_text(_WORD_RE, "a name of letters, digits, _ . : -"))]
Url = Annotated[str, PlainValidator(_text(_URL_RE, "an http(s) address without ? or #"))]
Severity = Literal["critical", "warning", "info"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alert(_Table):
    """What every alert sets: its severity, ``for:`` and optionally its own hold."""
    severity: Severity
    for_: Duration = Field(alias="for")
    keep_firing_for: Duration | None = None


class StepWindow(_Table):
    """One speed of a step-after-step leak test: ``drops`` of ``count`` windows."""
    name: Word
    window: Window
    count: Count
    drops: Count

    @model_validator(mode="after")
    def _fewer_drops(self) -> "StepWindow":
        if self.count < 2 or self.drops > self.count - 1:
            raise ValueError("needs count of at least 2 and drops at most count - 1 "
                             "(count %d, drops %d)" % (self.count, self.drops))
        return self


def _unique(windows: List[StepWindow]) -> List[StepWindow]:
    for attr in ("name", "window"):
        seen = [getattr(w, attr) for w in windows]
        if len(set(seen)) != len(seen):
            raise ValueError("two windows with the same %s" % attr)
    return windows


StepWindows = Annotated[List[StepWindow], Field(min_length=1), AfterValidator(_unique)]


class DDRBandwidthHigh(Alert):
    ratio: Ratio
    window: Window
    share: Ratio


class MMZExhausted(Alert):
    free_ratio: Ratio
    largest_free_block_bytes: Positive
    hold: Window


class MMZFillingUp(Alert):
    drop_ratio: Ratio
    windows: StepWindows


class AcceleratorMemoryLeak(Alert):
    growth_bytes_per_hour: Positive
    windows: StepWindows


class Down(Alert):
    vanished_window: Window


class Rebooted(Alert):
    window: Window
    tolerance_seconds: Whole


class CollectorFailing(Alert):
    stale_after: Window
    vanished_window: Window


class InferenceStalled(Alert):
    stall_after: Window
    gone_window: Window


class InferenceLatencyHigh(Alert):
    p99_seconds: Positive
    regression_factor: Annotated[Number, PlainValidator(_number(1, above=True))]
    baseline_window: Window
    regression_min_seconds: NonNegative


class TemperatureHigh(Alert):
    celsius: Annotated[Number, PlainValidator(_number(-273.15, above=True))]


class Alerts(_Table):
    """Every alert the generator writes; each must be set (no hidden defaults)."""
    BoardDDRBandwidthHigh: DDRBandwidthHigh
    BoardMMZExhausted: MMZExhausted
    BoardMMZFillingUp: MMZFillingUp
    BoardAcceleratorMemoryLeak: AcceleratorMemoryLeak
    BoardDown: Down
    BoardRebooted: Rebooted
    BoardCollectorFailing: CollectorFailing
    BoardInferenceStalled: InferenceStalled
    BoardInferenceLatencyHigh: InferenceLatencyHigh
    BoardTemperatureHigh: TemperatureHigh


class Soak(_Table):
    """Soak verdict bounds (``boardfleet soak report``); all optional."""
    scrape_completeness_min: Ratio = 0.95
    gap_min: Window = "10m"
    reboots_max: Whole = 0
    mmz_loss_bytes_max: NonNegative = 8 * 2**20
    leak_bytes_per_hour_max: Positive = 2**20
    leak_r2_min: Ratio = 0.8
    ddr_above_share_max: Ratio = 0.05
    temperature_celsius_max: Annotated[Number, PlainValidator(_number(-273.15, above=True))] = 85
    latency_p99_drift_max: Annotated[Number, PlainValidator(_number(1, above=True))] = 1.5
    latency_min_seconds: NonNegative = 0.01
    latency_window: Window = "1h"
    fail_on_alert_severities: List[Severity] = ["critical"]


# Labels the rules join on (``on (board, job)``, ``on (instance, job)``).
JOIN_LABELS = ("board", "instance", "job")


class Thresholds(_Table):
    """The whole of ``prometheus/thresholds.yml``."""
    board_labels: Annotated[List[LabelName], Field(min_length=1)]
    agent_job: Word
    agentless_job: Word
    runbook_url: Url
    dashboard_url: Url
    keep_firing_for: Duration
    alerts: Alerts
    soak: Soak = Soak()

    @field_validator("board_labels")
    @classmethod
    def _joins(cls, labels: List[str]) -> List[str]:
        if any(x not in labels for x in JOIN_LABELS) or len(set(labels)) != len(labels):
            raise ValueError("must list each label once and include %s"
                             % ", ".join(JOIN_LABELS))
        return labels

    @model_validator(mode="after")
    def _two_jobs(self) -> "Thresholds":
        if self.agent_job == self.agentless_job:
            raise ValueError("agent_job and agentless_job must differ")
        return self

    def as_dict(self) -> Dict[str, Any]:
        """The file as plain data, keys as written and soak defaults filled in."""
        return self.model_dump(by_alias=True, exclude_none=True)


def load(path: Union[str, Path]) -> Thresholds:
    """Read and check ``path``; any problem is a :class:`ThresholdsError` naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ThresholdsError("cannot read %s: %s" % (path, e.strerror or e)) from None
    except UnicodeDecodeError:
        raise ThresholdsError("%s is not UTF-8 text" % path) from None
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: 2024-02-30
        raise ThresholdsError("%s is not valid YAML: %s" % (path, e)) from None
    return parse(data, str(path))


def parse(data: Any, where: str = "thresholds") -> Thresholds:
    """Check an already parsed document; ``where`` names it in errors."""
    if not isinstance(data, dict):
        raise ThresholdsError("%s: expected a mapping of settings with an 'alerts:' table, "
                              "not %s" % (where, _kind(data)))
    if "soak" in data and data["soak"] is None:
        data = {**data, "soak": {}}
    try:
        return Thresholds.model_validate(data)
    except ValidationError as e:
        raise ThresholdsError("%s: %s" % (where, describe(e))) from None
    except RecursionError:
        raise ThresholdsError("%s: nested too deeply" % where) from None


def describe(e: ValidationError) -> str:
    """Pydantic's errors as 'dotted.key: cause' phrases, unknown keys with the known."""
    out = []
    errors = e.errors(include_url=False)
    for err in errors[:5]:
        loc: Tuple[Any, ...] = err["loc"]
        key = _dotted(loc)
        if err["type"] == "invalid_key":
            key = "%s%r" % (_dotted(loc[:-1]) + "." if loc[:-1] else "", loc[-1])
        if err["type"] in ("extra_forbidden", "invalid_key"):
            known = _known(loc[:-1])
            out.append("%s: unknown key%s" % (key, " (known here: %s)" % ", ".join(known)
                                              if known else ""))
        elif err["type"] == "missing":
            out.append("%s: missing" % key)
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type", "list_type"):
            out.append("%s: must be a %s, not %s" % (key, "list" if err["type"] == "list_type"
                                                    else "mapping", _kind(err["input"])))
        elif err["type"] == "literal_error":
            out.append("%s: %s" % (key, err["msg"].replace("Input should be", "must be")))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msg = msg.replace("List should have at least 1 item after validation, not 0",
                              "must not be empty")
            out.append("%s: %s" % (key, msg))
    more = len(errors) - len(out)
    return "; ".join(out) + (" (and %d more)" % more if more > 0 else "")


def _dotted(loc: Tuple[Any, ...]) -> str:
    """``alerts.BoardMMZFillingUp.windows[0].count``; ``top level`` for the file."""
    out = ""
    for part in loc:
        out += "[%d]" % part if isinstance(part, int) else "%s%s" % ("." if out else "", part)
    return out or "top level"


def _known(loc: Tuple[Any, ...]) -> List[str]:
    """The keys the table at ``loc`` accepts (as written in the file)."""
    model: Type[BaseModel] | None = Thresholds
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items()
                      if (f.alias or n) == part), None)
        model = _model_of(field.annotation) if field else None
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _model_of(annotation: Any) -> Type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None
