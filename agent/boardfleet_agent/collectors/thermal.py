"""Temperatures from thermal zones and hwmon, as ``board_temperature_celsius{sensor}``.

Files are read independently (docs/metrics.md, parsing policy): a zone or hwmon input
that refuses reads (EIO, EACCES, EINVAL, ...) fails the run while every readable sensor
is served; one that vanished is skipped. A thermal zone whose ``mode`` is ``disabled``
and whose ``temp`` refuses reads is skipped: the kernel stopped reading that sensor (on
Qualcomm kernels: "Unable to get temperature, disabling!"; node_exporter's thermal_zone
collector fails on such zones with EINVAL).

A zone's ``type`` and a hwmon device's ``name`` and labels never change while its
directory exists, so they are read once per directory, not on every scrape: cached
under the directory's :meth:`~boardfleet_agent.source.Source.identity` (inode and
change time), which a zone re-created under the same path (module reload renumbers
zones) does not share.
"""

import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from boardfleet_agent.errors import NoData, ParseError, SourceError
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.sysfs import first_line
from boardfleet_agent.parsers.thermal import celsius, is_temperature_sensor
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

# Per directory: its identity, and its names (zone: type; hwmon: name, label per input).
_Names = Tuple[Tuple[int, int, int], Dict[str, Optional[str]]]

ZONES = "/sys/class/thermal/thermal_zone*"
HWMON = "/sys/class/hwmon/hwmon*"
_TEMP_INPUT = re.compile(r"temp(\d+)_input$")


@register
class ThermalCollector(Collector):
    name = "thermal"
    paths = (ZONES + "/type", ZONES + "/temp", ZONES + "/mode", HWMON + "/name",
             HWMON + "/temp*_input", HWMON + "/temp*_label")

    def __init__(self, settings: Mapping[str, Any], platform: str = "generic") -> None:
        super().__init__(settings, platform)
        self._names: Dict[str, _Names] = {}  # directories of the last run
        self._seen: Dict[str, _Names] = {}  # directories of this run

    def collect(self, src: Source) -> Iterator[Metric]:
        refused: List[str] = []
        self._seen = {}
        try:
            rows = self._zones(src, refused) + self._hwmon(src, refused)
        finally:
            self._names, self._seen = self._seen, {}
        if not rows and not refused:
            raise NoData("no thermal zones or hwmon temperature sensors")
        fam = GaugeMetricFamily(
            "board_temperature_celsius",
            "Temperature per sensor; sensor is the thermal zone type or hwmon label.",
            labels=["sensor", "zone"])
        for sensor, zone, value in rows:
            fam.add_metric([sensor, zone], value)
        yield fam
        if refused:
            raise SourceError("%d temperature file(s) refused reads (the other sensors are "
                              "served): %s" % (len(refused), "; ".join(refused[:3])))

    def _zones(self, src: Source, refused: List[str]) -> List[Tuple[str, str, float]]:
        rows = []
        for zone_dir in src.glob(ZONES):
            zone = zone_dir.rsplit("/", 1)[1]
            try:
                sensor = self._name(src, zone_dir, "type") or ""
                raw = src.read_text(zone_dir + "/temp")
            except FileNotFoundError:
                continue  # the zone went away (module unloaded, hotplug)
            except (OSError, SourceError) as e:
                if not _disabled(src, zone_dir):
                    refused.append(_why(e))
                continue
            if not sensor or not is_temperature_sensor(sensor):
                continue
            value = _celsius_or_none(raw, zone_dir + "/temp")
            if value is not None:
                rows.append((sensor, zone, value))
        return rows

    def _hwmon(self, src: Source, refused: List[str]) -> List[Tuple[str, str, float]]:
        rows = []
        for hw_dir in src.glob(HWMON):
            hw = hw_dir.rsplit("/", 1)[1]
            chip = self._name(src, hw_dir, "name", absent_ok=True) or hw
            inputs = src.glob(hw_dir + "/temp*_input")
            for path in inputs:
                m = _TEMP_INPUT.search(path)
                if not m:
                    continue
                idx = m.group(1)
                label = self._name(src, hw_dir, "temp%s_label" % idx, absent_ok=True)
                if label is None:
                    sensor = chip if len(inputs) == 1 else "%s_temp%s" % (chip, idx)
                else:
                    sensor = label
                try:
                    raw = src.read_text(path)
                except FileNotFoundError:
                    continue
                except (OSError, SourceError) as e:
                    refused.append(_why(e))
                    continue
                value = _celsius_or_none(raw, path)
                if value is not None and is_temperature_sensor(sensor):
                    rows.append((sensor, "%s_temp%s" % (hw, idx), value))
        return rows

    def _name(self, src: Source, directory: str, file: str,
               absent_ok: bool = False) -> Optional[str]:
        """The first line of ``directory/file``, read once while the directory stays the
        same one (looked at once a run). With ``absent_ok``: None if it cannot be read
        (cached if it is absent); else its errors are raised (and nothing is cached)."""
        names: Optional[Dict[str, Optional[str]]] = None
        seen = self._seen.get(directory)
        if seen is not None:
            names = seen[1]
        else:
            try:
                key = src.identity(directory)
            except (OSError, SourceError):
                key = None
            if key is not None:
                last = self._names.get(directory)
                names = last[1] if last is not None and last[0] == key else {}
                self._seen[directory] = (key, names)
        if names is not None and file in names:
            return names[file]
        try:
            value: Optional[str] = first_line(src.read_text(directory + "/" + file))
        except FileNotFoundError:
            if not absent_ok:
                raise
            value = None
        except OSError:
            if not absent_ok:
                raise
            return None  # refused now: read again next time
        if names is not None:
            names[file] = value
        return value


def _disabled(src: Source, zone_dir: str) -> bool:
    """Whether the kernel disabled the zone (its ``mode`` file reads ``disabled``)."""
    try:
        return first_line(src.read_text(zone_dir + "/mode")) == "disabled"
    except (OSError, SourceError):
        return False


def _why(error: Exception) -> str:
    """``path: cause`` of a refused read, for the collector's error."""
    if isinstance(error, OSError) and error.filename:
        return "%s: %s" % (error.filename, error.strerror or error)
    return str(error)


def _celsius_or_none(raw: str, where: str):
    try:
        return celsius(raw, where)
    except ParseError:
        # EINVAL-style junk from a sensor that is powered down: skip it, not the scrape.
        return None
