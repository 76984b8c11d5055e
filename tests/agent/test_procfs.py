"""/proc parsers: exact values on fixture files, and only ParseError on junk."""

import contextlib

from hypothesis import given
from hypothesis import strategies as st
from support.paths import FIXTURES

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers import procfs

GENERIC = FIXTURES / "generic" / "proc"


def test_stat_per_cpu_seconds_and_boot_time() -> None:
    stat = procfs.parse_stat((GENERIC / "stat").read_text())
    assert sorted(stat.per_cpu) == ["0", "1", "2", "3"]
    assert stat.per_cpu["0"]["user"] == 802.11
    assert stat.per_cpu["3"]["idle"] == 20351.0
    assert stat.boot_time == 1763600000.0


def test_meminfo_converts_kb_and_keeps_counts() -> None:
    info = procfs.parse_meminfo((GENERIC / "meminfo").read_text())
    assert info["MemTotal"] == 3902548 * 1024
    assert info["HugePages_Total"] == 0
    assert procfs.available_bytes(info) == 2810332 * 1024


def test_meminfo_before_memavailable_estimates_it() -> None:
    info = procfs.parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 2 kB\nCached: 3 kB\n")
    assert procfs.available_bytes(info) == 15 * 1024


def test_pid_stat_comm_with_spaces_and_parens() -> None:
    line = "77 (my (odd) app) S 1 77 77 0 -1 0 0 0 0 0 250 50 0 0 20 0 1 0 500 1000 321 0"
    st_ = procfs.parse_pid_stat(line)
    assert st_.comm == "my (odd) app"
    assert st_.cpu_seconds == 3.0
    assert st_.rss_pages == 321


def test_mounts_decode_octal_escapes() -> None:
    mounts = procfs.parse_mounts("/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\n")
    assert mounts[0].mountpoint == "/mnt/my disk"


def test_loadavg_values() -> None:
    assert procfs.parse_loadavg("0.52 0.61 0.58 2/311 4567\n") == (0.52, 0.61, 0.58)


PARSERS = [procfs.parse_stat, procfs.parse_meminfo, procfs.parse_loadavg,
           procfs.parse_mounts, procfs.parse_pid_stat]


@given(st.text(max_size=400), st.sampled_from(PARSERS))
def test_parsers_raise_only_parse_error_on_junk(text: str, parser) -> None:
    with contextlib.suppress(ParseError):
        parser(text)


@given(st.data())
def test_truncated_real_files_raise_only_parse_error(data) -> None:
    for name, parser in (("stat", procfs.parse_stat), ("meminfo", procfs.parse_meminfo),
                         ("1234/stat", procfs.parse_pid_stat)):
        text = (GENERIC / name).read_text()
        cut = data.draw(st.integers(0, len(text)))
        with contextlib.suppress(ParseError):
            parser(text[:cut])
