"""Which vendor platform a sysroot belongs to, and what ``board_info`` says about it."""

import re
from typing import Dict

from boardfleet_agent.errors import SourceError
from boardfleet_agent.parsers.hisi_umap import sdk_version
from boardfleet_agent.source import Source

HISI_MARKERS = ("/proc/media-mem", "/proc/umap")
HORIZON_MARKERS = ("/sys/devices/system/bpu",)
SNAPDRAGON_MARKERS = ("/sys/class/kgsl",)
DT_MODEL = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
DT_COMPATIBLE = ("/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible")
HORIZON_WORDS = ("horizon", "hobot", "d-robotics", "rdk", "sunrise", "journey")
# HiSilicon MPP modules print "[VB] Version: [Hi3516EV200_MPP_V1.0.1.1 B030 Release]"; the
# prefix names the SDK's SoC (boards sharing one SDK, e.g. Hi3518EV300, report that SoC).
HISI_VERSION_FILES = ("/proc/umap/sys", "/proc/umap/vb", "/proc/umap/ive")
_HISI_SDK_SOC = re.compile(r"^([A-Za-z]+\d\w*?)_MPP_")


def read_dt(src: Source, paths: tuple) -> str:
    """First readable device-tree string property, NUL separators turned into spaces."""
    for p in paths:
        try:
            return src.read_text(p).replace("\x00", " ").strip()
        except (OSError, SourceError):
            continue
    return ""


def detect(src: Source) -> str:
    """Guess the platform: hisi, horizon, snapdragon, or generic."""
    if any(src.exists(p) for p in HISI_MARKERS):
        return "hisi"
    model = read_dt(src, DT_MODEL).lower()
    compatible = read_dt(src, DT_COMPATIBLE).lower()
    if any(src.exists(p) for p in HORIZON_MARKERS) or any(
            w in model or w in compatible for w in HORIZON_WORDS):
        return "horizon"
    if any(src.exists(p) for p in SNAPDRAGON_MARKERS) or "qcom" in compatible:
        return "snapdragon"
    return "generic"


def describe(src: Source) -> Dict[str, str]:
    """``soc``, ``model`` and ``kernel`` for ``board_info`` (empty strings when unknown)."""
    model = read_dt(src, DT_MODEL)
    compatible = [c for c in read_dt(src, DT_COMPATIBLE).split(" ") if c]
    # The device tree lists compatibles from most to least specific; the last is the SoC.
    soc = compatible[-1] if compatible else hisi_sdk_soc(src)
    kernel = ""
    try:
        kernel = src.read_text("/proc/sys/kernel/osrelease").strip()
    except (OSError, SourceError):
        try:
            parts = src.read_text("/proc/version").split()
            kernel = parts[2] if len(parts) > 2 else ""
        except (OSError, SourceError):
            pass
    return {"soc": soc, "model": model, "kernel": kernel}


def hisi_sdk_soc(src: Source) -> str:
    """``hi3516ev200`` from a HiSilicon MPP version line, or "" if there is none."""
    for p in HISI_VERSION_FILES:
        try:
            m = _HISI_SDK_SOC.match(sdk_version(src.read_text(p)) or "")
        except (OSError, SourceError):
            continue
        if m:
            return m.group(1).lower()
    return ""
