"""What is this board? A POSIX sh probe run over SSH, and its parsed answer.

The probe reads ``/proc``, ``/sys``, ``/run`` and ``/etc/os-release`` under a sysroot
(``/`` on real boards; the same test seam as the agent's ``--sysroot``) and prints
``key=value`` lines. It needs only busybox and runs on boards without Python.
"""

import re
import shlex
from dataclasses import dataclass
from typing import Literal, Tuple, cast, get_args

PROBE = r"""
r=${sysroot%/}
say() { printf '%s=%s\n' "$1" "$2"; }
say arch "$(uname -m 2>/dev/null)"
os=$(sed -n 's/^PRETTY_NAME=//p' "$r/etc/os-release" 2>/dev/null | tr -d '"')
say os "${os:-$(uname -sr 2>/dev/null)}"
if [ -d "$r/run/systemd/system" ]; then say init systemd
elif [ -d "$r/run/openrc" ] || [ -x "$r/sbin/openrc-run" ]; then say init openrc
else say init sysv; fi
py=$(command -v python3 2>/dev/null)
say python "$py"
[ -n "$py" ] && say python_version \
  "$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
dt=$(cat "$r/proc/device-tree/model" "$r/proc/device-tree/compatible" \
  "$r/sys/firmware/devicetree/base/model" "$r/sys/firmware/devicetree/base/compatible" \
  2>/dev/null | tr '\000A-Z' ' a-z')
if [ -e "$r/proc/media-mem" ] || [ -e "$r/proc/umap" ]; then say platform hisi
elif [ -e "$r/sys/devices/system/bpu" ] || \
  echo "$dt" | grep -Eq 'horizon|hobot|d-robotics|rdk|sunrise|journey'; then say platform horizon
elif [ -e "$r/sys/class/kgsl" ] || echo "$dt" | grep -q qcom; then say platform snapdragon
else say platform generic; fi
if grep -q '^[^ ]* [^ ]* debugfs ' "$r/proc/mounts" 2>/dev/null; then say debugfs yes
else say debugfs no; fi
if [ "$(id -u 2>/dev/null)" = 0 ]; then say root yes; else say root no; fi
"""

INITS = ("systemd", "sysv", "openrc")
ProbedPlatform = Literal["hisi", "horizon", "snapdragon", "generic"]
PLATFORMS: Tuple[ProbedPlatform, ...] = get_args(ProbedPlatform)
_SAFE = re.compile(r"[^\x20-\x7e]")
MIN_PYTHON = (3, 8)


@dataclass
class Probe:
    arch: str = ""
    os: str = ""
    init: str = "sysv"
    python: str = ""
    python_version: str = ""
    platform: ProbedPlatform = "generic"
    debugfs: bool = False
    root: bool = False

    def python_ok(self) -> bool:
        """A python3 the agent runs on (3.8 or newer)."""
        m = re.match(r"^(\d+)\.(\d+)", self.python_version)
        return bool(self.python.startswith("/") and m
                    and (int(m.group(1)), int(m.group(2))) >= MIN_PYTHON)


def command(sysroot: str = "/") -> str:
    """The shell command that probes a board whose /proc and /sys are under ``sysroot``."""
    return "sysroot=%s\n%s" % (shlex.quote(sysroot), PROBE)


def parse(text: str) -> Probe:
    """Parse the probe's output; unknown keys and odd values are ignored, never fatal."""
    p = Probe()
    for line in text.splitlines()[:50]:
        key, sep, value = line.partition("=")
        value = _SAFE.sub("", value).strip()[:200]
        if not sep:
            continue
        if key in ("arch", "os", "python_version"):
            setattr(p, key, value)
        elif key == "python" and value.startswith("/") and "\n" not in value:
            p.python = value
        elif key == "init" and value in INITS:
            p.init = value
        elif key == "platform" and value in PLATFORMS:
            p.platform = cast(ProbedPlatform, value)  # one of PLATFORMS, checked above
        elif key in ("debugfs", "root"):
            setattr(p, key, value == "yes")
    return p
