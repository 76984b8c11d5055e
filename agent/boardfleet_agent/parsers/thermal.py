"""Which thermal readings are temperatures, and their value in degrees Celsius."""

import re
from typing import Optional

from boardfleet_agent.parsers.sysfs import parse_int

# Zone types that are not temperatures: battery state of charge (``soc``, ``bms``),
# BCL current/voltage thresholds (``pm8150b-ibat-lvl0``), and virtual step zones
# (``gpu-skin-avg-step: 7600``) on Snapdragon.
NOT_TEMPERATURE = re.compile(r"(^soc$|^bms$|-lvl\d+$|-step$)")
MIN_CELSIUS = -40.0  # disconnected thermistors read -40 °C (or far below)
MAX_CELSIUS = 200.0


def is_temperature_sensor(sensor: str) -> bool:
    return not NOT_TEMPERATURE.search(sensor)


def celsius(text: str, where: str) -> Optional[float]:
    """Millidegree text -> °C, or None for readings that cannot be temperatures."""
    value = parse_int(text, where) / 1000.0
    if value <= MIN_CELSIUS or value > MAX_CELSIUS:
        return None
    return value
