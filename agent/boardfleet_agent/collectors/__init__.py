"""Collectors, one per module; each registers itself with ``@register``.

CATALOG is the one declaration of what the agent can collect: each collector's name (its
module's), the platforms it runs on, whether it is on by default, and its line of help.
The command line, the config check and the choice of what runs read it without importing
a collector, so an agent imports only the collectors it runs (the others cost about
0.35 MiB on a board, issue 18). A module declares how its collector reads (paths,
settings, interval); ``@register`` gives the class its catalogue entry. A test checks the
catalogue against the files.
"""

from typing import Dict, FrozenSet, NamedTuple


class Entry(NamedTuple):
    help: str
    platforms: FrozenSet[str] = frozenset()  # empty: every platform
    default_enabled: bool = True
    enabled_by: str = ""  # a setting whose value enables the collector when it is given


HISI = frozenset({"hisi"})
HORIZON = frozenset({"horizon"})
SNAPDRAGON = frozenset({"snapdragon"})

CATALOG: Dict[str, Entry] = {
    "bpu": Entry("BPU utilisation and frequency per core (/sys/devices/system/bpu)", HORIZON),
    "cpu": Entry("CPU seconds per core and mode (/proc/stat)"),
    "cpufreq": Entry("current CPU frequency per core (cpufreq scaling_cur_freq)"),
    "dmabuf": Entry("DMA-BUF bytes and buffers per exporter (debugfs dma_buf/bufinfo)",
                    SNAPDRAGON),
    "dmabuf_process": Entry(
        "DMA-BUF bytes per process name (/proc/<pid>/fdinfo, deduplicated by inode)"),
    "filesystem": Entry(
        "size and available bytes of storage filesystems (/proc/mounts + statvfs)"),
    "hisi_ddr": Entry(
        "HiSilicon DDR utilisation measured by hiddrs/bspddrs (runs the vendor tool)", HISI),
    "hisi_npu": Entry(
        "HiSilicon SVP NNN/NPU, NNIE and IVE utilisation and interrupts (/proc/umap)", HISI),
    "hisi_vb": Entry(
        "HiSilicon video buffer pools: blocks, free, minimum free (/proc/umap/vb)", HISI),
    "horizon_ddr": Entry(
        "DDR read/write bandwidth per AXI port (axi_mon debugfs or hrut_ddr)", HORIZON),
    "info": Entry("board_info metadata (platform, soc, model, kernel, agent version)"),
    "ion": Entry(
        "ION heap size/used/orphaned and bytes per process (debugfs ion/heaps, root)",
        HORIZON | SNAPDRAGON),
    "kgsl": Entry(
        "Adreno GPU utilisation, frequency, model and per-process memory (kgsl sysfs)",
        SNAPDRAGON),
    "loadavg": Entry("1, 5 and 15 minute load averages (/proc/loadavg)"),
    "memory": Entry("memory total/available and CMA (/proc/meminfo)"),
    "mmz": Entry("HiSilicon MMZ zones, allocations and owners (/proc/media-mem)", HISI),
    "processes": Entry("CPU seconds and RSS of configured process names (/proc/<pid>/stat)"),
    "qcom_ddr": Entry(
        "Snapdragon DDR frequency and frequency/vote ratio (bus_dcvs or devfreq)", SNAPDRAGON),
    "textfile": Entry(
        "metrics from *.prom files in a directory other tools write (node_exporter style)",
        default_enabled=False, enabled_by="directory"),
    "thermal": Entry("temperatures from thermal zones and hwmon sensors"),
}
