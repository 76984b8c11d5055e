"""DMA-BUF parsers: bufinfo in every known layout, and dma-buf fdinfo."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.dmabuf import DmaBufFd, parse_bufinfo, parse_dmabuf_fdinfo
from boardfleet_agent.parsers.lines import Skips
from snapdragon.helpers import (
    QCS6490,
    amdgpu_bufinfo,
    amdgpu_fdinfo,
    asahi_bufinfo,
    parsed_or_rejected,
)

HEADER_6X = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n"


def test_asahi_capture_space_padded() -> None:
    info = parse_bufinfo(asahi_bufinfo())
    assert len(info.buffers) == 4
    assert {b.exp_name for b in info.buffers} == {"drm"}
    assert sum(b.size for b in info.buffers) == 48267264
    assert [b.size for b in info.buffers] == [1064960, 1064960, 23068672, 23068672]
    assert [b.refs for b in info.buffers] == [9, 9, 3, 3]
    assert [b.ino for b in info.buffers] == [125955, 125953, 125950, 125948]
    assert [b.name for b in info.buffers] == ["", "", "", ""]  # "<none>"
    assert [b.attached for b in info.buffers] == [
        ["soc:display-subsystem"], ["soc:display-subsystem"], [], []]
    assert (info.footer_objects, info.footer_bytes) == (None, None)


def test_amdgpu_capture_tab_separated() -> None:
    info = parse_bufinfo(amdgpu_bufinfo())
    assert len(info.buffers) == 1
    buf = info.buffers[0]
    assert (buf.size, buf.refs, buf.exp_name, buf.ino, buf.name) == (
        1048576, 4, "drm", 2, "")
    assert buf.attached == ["0000:01:00.0"]  # the kernel fence line is not a device


def test_fixture_qcom_heaps_with_footer() -> None:
    info = parse_bufinfo((QCS6490 / "sys/kernel/debug/dma_buf/bufinfo").read_text())
    assert (info.footer_objects, info.footer_bytes) == (8, 35611136)
    assert [b.exp_name for b in info.buffers].count("qcom,system") == 3
    assert info.buffers[3].name == "qnn-model"
    assert info.buffers[4].attached == [
        "soc:qcom,msm_fastrpc:qcom,msm_fastrpc_compute_cb1", "3d00000.qcom,kgsl-3d0"]


def test_pre_6_1_empty_name_is_not_a_missing_column() -> None:
    text = HEADER_6X + "00004096\t00000002\t00080007\t00000001\tsystem\t00000077\t\n" \
        "\tAttached Devices:\nTotal 0 devices attached\n\n\nTotal 1 objects, 4096 bytes\n"
    buf = parse_bufinfo(text).buffers[0]
    assert (buf.exp_name, buf.ino, buf.name) == ("system", 77, "")


def test_pre_5_10_without_ino_and_name() -> None:
    text = ("\nDma-buf Objects:\nsize   \tflags  \tmode   \tcount  \texp_name\n"
            "00524288\t00000002\t00000007\t00000003\tion\n"
            "\tExclusive fence: msm_drm ring0 signalled\n"
            "\tAttached Devices:\n\tsoc:qcom,smmu_sde_unsec_cb\n"
            "Total 1 devices attached\n\n\nTotal 1 objects, 524288 bytes\n")
    buf = parse_bufinfo(text).buffers[0]
    assert (buf.size, buf.refs, buf.exp_name, buf.ino, buf.name) == (
        524288, 3, "ion", None, "")
    assert buf.attached == ["soc:qcom,smmu_sde_unsec_cb"]


def test_space_padded_without_ino_and_unindented_fence() -> None:
    text = ("Dma-buf Objects:\nsize      flags     mode      count     exp_name\n"
            "00008192  00000000  00000005  00000001  qcom,system\n"
            "Exclusive fence: kgsl-timeline 12 signalled\n"
            "        Attached Devices:\n"
            "Total 0 devices attached\n")
    buf = parse_bufinfo(text).buffers[0]
    assert (buf.size, buf.exp_name, buf.ino, buf.attached) == (8192, "qcom,system", None, [])


def test_zero_padded_sizes_are_decimal() -> None:
    text = HEADER_6X + "00000010\t00000000\t00000000\t00000010\tsystem\t00000010\t<none>\n"
    buf = parse_bufinfo(text).buffers[0]
    assert (buf.size, buf.refs, buf.ino) == (10, 10, 10)


def test_name_with_spaces_in_tab_layout() -> None:
    text = HEADER_6X + "00004096\t00000002\t00080007\t00000001\tsystem\t00000005\tcam preview 0\n"
    assert parse_bufinfo(text).buffers[0].name == "cam preview 0"


def test_empty_table() -> None:
    info = parse_bufinfo(HEADER_6X + "\nTotal 0 objects, 0 bytes\n")
    assert (info.buffers, info.footer_objects, info.footer_bytes) == ([], 0, 0)


@pytest.mark.parametrize("footer", ["Total 2 objects, 4096 bytes", "Total 1 objects, 4097 bytes"])
def test_footer_mismatch_is_a_parse_error(footer: str) -> None:
    text = HEADER_6X + "00004096\t00000002\t00080007\t00000001\tsystem\t00000005\t<none>\n\n" \
        + footer + "\n"
    with pytest.raises(ParseError, match="footer"):
        parse_bufinfo(text)


@pytest.mark.parametrize("bad", [
    "0000409x\t00000002\t00080007\t00000001\tsystem\t00000005\t<none>",  # size
    "00004096\t0000000g\t00080007\t00000001\tsystem\t00000005\t<none>",  # flags
    "00004096\t00000002\t00080007\t00000001\t\t00000005\t<none>",  # exp_name
    "00004096\t00000002\t00080007\t00000001\tsystem\t-0000005\t<none>",  # ino
    "00004096\t00000002\t00080007",  # too few columns
    "garbage line",
])
def test_bad_buffer_lines(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_bufinfo(HEADER_6X + bad + "\n")


def test_text_after_footer_is_skipped_and_counted() -> None:
    skips = Skips("dmabuf")
    info = parse_bufinfo(HEADER_6X + "\nTotal 0 objects, 0 bytes\n00004096\t0\t0\t1\tsystem\n",
                         skips)
    assert (info.buffers, skips.total) == ([], 1)


@pytest.mark.parametrize("bad", ["garbage line", "00004096\t00000002\t00080007",
                                 "0000409x\t00000002\t00080007\t00000001\tsystem"])
def test_bad_line_among_good_ones_costs_only_itself(bad: str) -> None:
    good = "00004096\t00000002\t00080007\t00000001\tsystem\t00000005\t<none>\n"
    skips = Skips("dmabuf")
    # The footer counts the line that could not be read: with a skip it is not checked.
    info = parse_bufinfo(HEADER_6X + good + bad + "\n" + good + "\nTotal 3 objects, 12288 bytes\n",
                         skips)
    assert [b.size for b in info.buffers] == [4096, 4096] and skips.total == 1


def test_cut_last_line_is_dropped() -> None:
    good = "00004096\t00000002\t00080007\t00000001\tsystem\t00000005\t<none>\n"
    info = parse_bufinfo(HEADER_6X + good + good[:20])
    assert len(info.buffers) == 1


def test_amdgpu_fdinfo_capture() -> None:
    assert parse_dmabuf_fdinfo(amdgpu_fdinfo()) == DmaBufFd(1048576, "drm", 2, 4)


def test_fdinfo_upstream_tabs_with_name() -> None:
    text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t41100\nsize:\t12582912\n" \
        "count:\t1\nexp_name:\tsystem\nname:\tqnn-model\n"
    assert parse_dmabuf_fdinfo(text) == DmaBufFd(12582912, "system", 41100, 1)


def test_fdinfo_of_other_fds_is_none() -> None:
    epoll = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n" \
        "tfd:        5 events:       19 data:                5  pos:0 ino:2011 sdev:f\n"
    assert parse_dmabuf_fdinfo(epoll) is None
    assert parse_dmabuf_fdinfo("") is None


def test_fdinfo_without_ino_on_old_kernels() -> None:
    assert parse_dmabuf_fdinfo("size:\t4096\ncount:\t1\nexp_name:\tion\n") == \
        DmaBufFd(4096, "ion", None, 1)


@pytest.mark.parametrize("bad", [
    "exp_name:\tsystem\n", "size:\tbig\nexp_name:\tsystem\n",
    "size:\t4096\nexp_name:\t\n", "ino:\t-1\nsize:\t4096\nexp_name:\tsystem\n",
])
def test_bad_dmabuf_fdinfo(bad: str) -> None:
    with pytest.raises(ParseError):
        parse_dmabuf_fdinfo(bad)


# --- fuzzing: records or ParseError, nothing else ---------------------------------------

REAL_BUFINFO = [asahi_bufinfo(), amdgpu_bufinfo(),
                (QCS6490 / "sys/kernel/debug/dma_buf/bufinfo").read_text()]


def _bufinfo_ok(text: str) -> None:
    try:
        info = parse_bufinfo(text)
    except ParseError:
        return
    assert all(b.size >= 0 and b.exp_name for b in info.buffers)


def _fdinfo_ok(text: str) -> None:
    got = parsed_or_rejected(parse_dmabuf_fdinfo, text)
    assert got is None or (got.size >= 0 and got.exp_name)


@pytest.mark.parametrize("text", REAL_BUFINFO, ids=["asahi", "amdgpu", "qcs6490"])
def test_bufinfo_truncated_at_every_line(text: str) -> None:
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) + 1):
        _bufinfo_ok("".join(lines[:i]))
        _bufinfo_ok("".join(lines[i:]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_bufinfo_truncated_at_random_bytes(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(REAL_BUFINFO))
    raw = text.encode()
    cut = data.draw(st.integers(0, len(raw)))
    _bufinfo_ok(raw[:cut].decode("utf-8", "replace"))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789abcdefxTotal objects,bytes:\t \n<>"))
               | st.characters(), max_size=300))
def test_bufinfo_random_text(text: str) -> None:
    _bufinfo_ok(text)


REAL_LINES = sorted({line for text in REAL_BUFINFO for line in text.splitlines()})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(REAL_LINES) | st.text(max_size=40), max_size=30))
def test_bufinfo_real_lines_shuffled_and_mixed_with_noise(lines: list) -> None:
    _bufinfo_ok("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fdinfo_random_text(text: str) -> None:
    _fdinfo_ok(text)
    _fdinfo_ok("exp_name:\tsystem\n" + text)


def test_fdinfo_capture_truncated_at_every_byte() -> None:
    raw = amdgpu_fdinfo()
    for i in range(len(raw) + 1):
        _fdinfo_ok(raw[:i])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 ** 33), st.sampled_from(["system", "qcom,qseecom"])),
                max_size=6),
       st.lists(st.sampled_from(["?? unknown", "Total x", "0000zz\tq"]), max_size=3),
       st.data())
def test_complete_buffer_lines_survive_unknown_lines_and_any_cut(rows, junk, data) -> None:
    lines = []
    for i, (size, exp) in enumerate(rows):
        lines.append("%08d\t00000002\t00080007\t00000001\t%s\t%08d\t<none>\textra" % (size, exp, i))
        if junk:
            lines.append(junk[i % len(junk)])
    text = HEADER_6X + "".join(line + "\n" for line in lines)
    cut = data.draw(st.integers(0, len(text)))
    head = text[:cut]
    try:
        got = [(b.size, b.exp_name) for b in parse_bufinfo(head).buffers]
    except ParseError:
        got = []
    complete = head[:head.rfind("\n") + 1]
    n = sum("\t00080007\t00000001\t" in line for line in complete.splitlines())
    assert got == rows[:n]
