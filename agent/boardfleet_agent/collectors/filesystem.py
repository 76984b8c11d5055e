"""Size and free space of real (flash and disk) filesystems."""

from typing import Iterator

from boardfleet_agent.errors import NoData
from boardfleet_agent.families import GaugeMetricFamily, Metric
from boardfleet_agent.parsers.procfs import parse_mounts
from boardfleet_agent.registry import Collector, register
from boardfleet_agent.source import Source

# Filesystems that live on storage; pseudo filesystems (proc, sysfs, tmpfs...) are skipped.
STORAGE_FSTYPES = frozenset((
    "ext2", "ext3", "ext4", "vfat", "exfat", "ubifs", "jffs2", "yaffs2", "f2fs",
    "xfs", "btrfs", "squashfs", "erofs", "overlay",
))


@register
class FilesystemCollector(Collector):
    name = "filesystem"
    paths = ("/proc/mounts",)

    def collect(self, src: Source) -> Iterator[Metric]:
        mounts = [m for m in parse_mounts(src.read_text("/proc/mounts"))
                  if m.fstype in STORAGE_FSTYPES]
        size = GaugeMetricFamily("board_filesystem_size_bytes", "Filesystem size.",
                                 labels=["mountpoint", "fstype"])
        avail = GaugeMetricFamily("board_filesystem_available_bytes",
                                  "Bytes available to unprivileged users.",
                                  labels=["mountpoint", "fstype"])
        seen = set()
        for m in mounts:
            if m.mountpoint in seen:
                continue
            try:
                st = src.statvfs(m.mountpoint)
            except OSError:
                continue
            seen.add(m.mountpoint)
            size.add_metric([m.mountpoint, m.fstype], float(st.f_blocks * st.f_frsize))
            avail.add_metric([m.mountpoint, m.fstype], float(st.f_bavail * st.f_frsize))
        if not seen:
            raise NoData("no storage filesystems")
        yield size
        yield avail
