"""The agent's push pipeline: apps report (``report``) -> StatsD intake (``intake``,
``statsd``) and log tails (``logtail``) -> latency histograms (``latency``) and model
loads (``modelload``), served as one custom collector (``pipeline.Inference``).

An agent whose config turns all of it off (``[statsd] listen = "off"``, no
``[logtail]`` files) does not import the pipeline (about 0.2 MiB on a board)."""

from typing import Any, Dict, Mapping

DEFAULT_STATSD_LISTEN = "127.0.0.1:8125"


def settings_of(sections: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The tables the pipeline is built from: a reload with the same ones keeps it."""
    return {k: sections.get(k) for k in ("statsd", "inference", "logtail")}


def wanted(sections: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the config asks for a StatsD intake or a log tail."""
    listen = sections.get("statsd", {}).get("listen", DEFAULT_STATSD_LISTEN)
    return listen != "off" or any(
        isinstance(v, dict) for v in sections.get("logtail", {}).values())
