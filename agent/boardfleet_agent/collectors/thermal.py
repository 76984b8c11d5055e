"""Temperatures from thermal zones and hwmon, as ``board_temperature_celsius{sensor}``.

Files are read independently (docs/metrics.md, parsing policy): a zone or hwmon input
that refuses reads (EIO, EACCES, EINVAL, ...) fails the run while every readable sensor
is served; one that vanished is skipped. A thermal zone whose ``mode`` is ``disabled``
and whose ``temp`` refuses reads is skipped: the kernel stopped reading that sensor (on
Qualcomm kernels: "Unable to get temperature, disabling!"; node_exporter's thermal_zone
collector fails on such zones with EINVAL).
"""

import re
from typing import Iterator, List, Tuple

from boardfleet_agent.errors import NoData, ParseError, SourceError
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.sysfs import first_line
from boardfleet_agent.parsers.thermal import celsius, is_temperature_sensor
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

ZONES = "/sys/class/thermal/thermal_zone*"
HWMON = "/sys/class/hwmon/hwmon*"
_TEMP_INPUT = re.compile(r"temp(\d+)_input$")


@register
class ThermalCollector(Collector):
    name = "thermal"
    help = "temperatures from thermal zones and hwmon sensors"
    paths = (ZONES + "/type", ZONES + "/temp", ZONES + "/mode", HWMON + "/name",
             HWMON + "/temp*_input", HWMON + "/temp*_label")

    def collect(self, src: Source) -> Iterator[Metric]:
        refused: List[str] = []
        rows = self._zones(src, refused) + self._hwmon(src, refused)
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
                sensor = first_line(src.read_text(zone_dir + "/type"))
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
            try:
                chip = first_line(src.read_text(hw_dir + "/name")) or hw
            except OSError:
                chip = hw
            inputs = src.glob(hw_dir + "/temp*_input")
            for path in inputs:
                m = _TEMP_INPUT.search(path)
                if not m:
                    continue
                idx = m.group(1)
                try:
                    sensor = first_line(src.read_text("%s/temp%s_label" % (hw_dir, idx)))
                except OSError:
                    sensor = chip if len(inputs) == 1 else "%s_temp%s" % (chip, idx)
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
