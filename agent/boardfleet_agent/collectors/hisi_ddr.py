"""HiSilicon DDR utilisation from the vendor's ``hiddrs`` (or newer ``bspddrs``) tool.

The tool maps the DDRC counters through /dev/mem (root) and prints one line per
interval until killed; it is run in the background, bounded in lines and time, and
runs of vendor tools are serialised by the source because they share the counters.

Treat the value as approximate: on the one real capture (Hi3559AV100) the readings
form a sawtooth (0.03 -> 19.23 % and round again), which suggests the tool's interval
or ``-f``/``-w`` frequency/width arguments did not match the board.
"""

from typing import Iterator, List

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.hiddrs import ddr_utilization
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

TOOLS = ("hiddrs", "bspddrs")
BANNER_LINES = 4  # hiddrs: 3 banner lines; bspddrs: 1 frequency line


@register
class HisiDdrCollector(Collector):
    name = "hisi_ddr"
    background = True
    default_interval = 15.0
    defaults = {
        "tool": "",  # "" tries hiddrs, then bspddrs
        "controller": 0,  # -d: which DDRC
        "interval": 1,  # -i, seconds (sent to bspddrs in ms)
        "samples": 3,  # intervals averaged after the first is dropped
        "freq": 0,  # -f DDR MHz for old hiddrs (0: leave the tool's default, 667)
        "width": 0,  # -w 16|32 for old hiddrs (0: leave the tool's default, 32)
    }

    def collect(self, src: Source) -> Iterator[Metric]:
        samples = max(1, int(self.settings["samples"]))
        interval = max(1, int(self.settings["interval"]))
        tools = [self.settings["tool"]] if self.settings["tool"] else list(TOOLS)
        for tool in tools:
            try:
                out = src.run_tool(tool, self.args(tool, interval),
                                   timeout=(samples + 1) * interval + 3.0,
                                   max_lines=samples + 1 + BANNER_LINES)
            except NoData:
                continue
            fam = GaugeMetricFamily("board_ddr_utilization_ratio",
                                    "DDR controller busy fraction (0..1).",
                                    labels=["controller", "source"])
            source = tool.rsplit("/", 1)[-1]
            for ctrl, ratio in sorted(ddr_utilization(out, samples).items()):
                fam.add_metric([ctrl, source], ratio)
            yield fam
            return
        raise NoData("neither hiddrs nor bspddrs is installed")

    def args(self, tool: str, interval: int) -> List[str]:
        ms = tool.endswith("bspddrs")
        args = ["-d", str(int(self.settings["controller"])),
                "-i", str(interval * 1000 if ms else interval)]
        if int(self.settings["freq"]) and not ms:
            args += ["-f", str(int(self.settings["freq"]))]
        if int(self.settings["width"]) and not ms:
            args += ["-w", str(int(self.settings["width"]))]
        return args
