"""The agent's push pipeline: apps report (``report``) -> StatsD intake (``intake``,
``statsd``) and log tails (``logtail``) -> latency histograms (``latency``) and model
loads (``modelload``), served as one custom collector (``pipeline.Inference``).

An agent whose config turns all of it off (``[statsd] listen = "off"``, no
``[logtail]`` files) does not import the pipeline (about 0.2 MiB on a board)."""

import re
from typing import Any, Dict, List, Mapping

from boardfleet_agent.config import ConfigError

DEFAULT_STATSD_LISTEN = "127.0.0.1:8125"
_TAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def settings_of(sections: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The tables the pipeline is built from: a reload with the same ones keeps it."""
    return {k: sections.get(k) for k in ("statsd", "inference", "logtail")}


def wanted(sections: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the config asks for a StatsD intake or a log tail."""
    listen = sections.get("statsd", {}).get("listen", DEFAULT_STATSD_LISTEN)
    return listen != "off" or any(
        isinstance(v, dict) for v in sections.get("logtail", {}).values())


def tags_of(sections: Mapping[str, Mapping[str, Any]]) -> List[str]:
    """``[inference] tags``: the DogStatsD tags kept as labels besides ``model``. Checked
    whether or not the pipeline runs, so that a bad table is told at start."""
    tags = sections.get("inference", {}).get("tags", ["backend"])
    if not isinstance(tags, list) or "model" in tags or not all(
            isinstance(t, str) and _TAG_NAME.match(t) for t in tags):
        raise ConfigError("inference.tags must be tag names other than model")
    return list(tags)
