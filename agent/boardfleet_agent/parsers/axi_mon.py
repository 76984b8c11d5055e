"""Parser for the X5 AXI monitor's ``/sys/kernel/debug/axi_mon/statistics``.

The format comes from the kernel source (D-Robotics x5-kernel
horizon_axi_monitor_debugfs.c, shared/docs/formats/horizon.md §4a); no captured output
was available, so spacing is matched loosely. Pure; raises only ParseError. Parsing
policy (docs/metrics.md): an unknown line, or a port without both bandwidth lines, is
skipped and counted; a last line cut short is dropped.
"""

import re
from typing import List, NamedTuple, Optional

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.lines import Skips, complete_lines, skip


class AxiPort(NamedTuple):
    name: str  # DT axi-names: cpu, bpu, vin, codec, gpu on X5
    read_bytes_per_second: int
    write_bytes_per_second: int


class AxiStatistics(NamedTuple):
    monitor_seconds: float  # length of the last completed monitoring session
    full_bandwidth: int  # DDR theoretical peak, bytes/s
    ports: List[AxiPort]


_MONITOR = re.compile(r"^Actual monitor time\s*:\s*(\d+)\s*millisecs$")
_FULL = re.compile(r"^DDR Full bandwidth\s*:\s*(\d+)\s*Bytes/sec$")
_PORT = re.compile(r"^Port\[([^\]]+)\]\s*:$")
_BANDWIDTH = re.compile(r"^(Read|Write)\s+Bandwidth\s*:\s*(\d+)\s*Bytes/sec$")
_UTILIZATION = re.compile(r"^(Read|Write)\s+Bandwidth Utilization\s*:\s*\d+\s*%$")
_KNOWN = ("Port utilization statistics:",)


def parse_statistics(text: str, skips: Optional[Skips] = None) -> AxiStatistics:
    """``statistics`` -> session length, DDR full bandwidth and per-port read/write."""
    monitor = full = None
    ports: List[AxiPort] = []
    port = None
    rates: dict = {}
    for raw in complete_lines(text):
        line = raw.strip()
        if not line or set(line) == {"="} or line in _KNOWN or _UTILIZATION.match(line):
            continue
        m_mon, m_full = _MONITOR.match(line), _FULL.match(line)
        m_port, m_bw = _PORT.match(line), _BANDWIDTH.match(line)
        if m_mon:
            monitor = int(m_mon.group(1)) / 1000.0
        elif m_full:
            full = int(m_full.group(1))
        elif m_port:
            _close(port, rates, ports, skips)
            port, rates = m_port.group(1).strip(), {}
        elif m_bw and port is not None:
            rates[m_bw.group(1)] = int(m_bw.group(2))
        else:
            skip(skips, line, "axi_mon statistics")
    _close(port, rates, ports, skips)
    if monitor is None or full is None or not ports:
        raise ParseError("axi_mon statistics: monitor time, full bandwidth or ports missing")
    return AxiStatistics(monitor, full, ports)


def _close(port, rates: dict, ports: List[AxiPort], skips: Optional[Skips]) -> None:
    if port is None:
        return
    if "Read" not in rates or "Write" not in rates:
        skip(skips, "Port[%s] without read and write bandwidth" % port, "axi_mon statistics")
        return
    ports.append(AxiPort(port, rates["Read"], rates["Write"]))
