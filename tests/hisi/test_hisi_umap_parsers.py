"""VB pool, SVP/NNIE/IVE and hiddrs parsers against the real captures."""

import pytest
from hisi_samples import sample

from boardfleet_agent.errors import ParseError
from boardfleet_agent.parsers.hiddrs import ddr_utilization, parse_ddrs
from boardfleet_agent.parsers.hisi_accel import AccelCore, parse_accel
from boardfleet_agent.parsers.hisi_umap import sdk_version
from boardfleet_agent.parsers.hisi_vb import VbPool, parse_vb


def test_vb_hi3516ev200_one_common_pool() -> None:
    assert parse_vb(sample("umap-vb.hi3516ev200.txt")) == [
        VbPool(0, True, 3110400, 3, 2, 2)]


def test_vb_hi3518ev300_common_and_private_pools() -> None:
    pools = parse_vb(sample("umap-vb.hi3518ev300.txt"))
    assert [p.pool for p in pools] == list(range(10))
    assert [p.common for p in pools] == [True] * 3 + [False] * 7
    # pool 2 has no BLK table (no busy block), pool 9 is the last in the file
    assert pools[2] == VbPool(2, True, 460800, 2, 2, 0)
    assert pools[9] == VbPool(9, False, 4096, 62, 62, 60)


def test_vb_without_pools_and_cut_pool() -> None:
    text = sample("umap-vb.hi3516ev200.txt")
    assert parse_vb(text.split("-----------------------------------------------------"
                               "---------------------------\n")[0]) == []
    cut = text[:text.index("0       0x441f0000")]
    with pytest.raises(ParseError):
        parse_vb(cut)


def test_svp_nnn_doc_template() -> None:
    cores = parse_accel(sample("umap-svp_nnn.doc-template.txt"), "svp_nnn")
    assert cores == [AccelCore("0", 0.0, 181)]


def test_svp_npu_two_devices_and_wrapped_rows() -> None:
    text = """[SVP_NPU] Version: [SS928V100_MPP_V2.0.2.1 B060 Release], Build Time[x]
-----------svp_npu irq info-----------
  device_id   irq_cnt_last_sec   max_irq_cnt_per_sec   total_irq_cnt
   0   17   17   181
   1    3    9   4500
-----------svp_npu runtime info-----------
  device_id   hw_status   last_stream_id
   0   1   0
   1   0   0
last_hw_task_time   hw_utilization   total_running_time
  13   37%   897
  10   5%    12
"""
    assert parse_accel(text, "svp_npu") == [
        AccelCore("0", 0.37, 181), AccelCore("1", 0.05, 4500)]


def test_ive_utili_and_total_interrupts() -> None:
    assert parse_accel(sample("umap-ive.hi3518ev300.txt"), "ive") == [
        AccelCore("0", 0.0, 689598)]


# /proc/umap/nnie: no real capture exists. This is the INFERRED layout (IVE template with
# a CoreId column, as the telnet monitors' column [2]/[3] reads suggest).
NNIE_INFERRED = """[NNIE] Version: [Hi3516CV500_MPP_V2.0.2.0 B010 Release], Build Time[x]

-----------------------------NNIE RUN-TIME INFO----------------------------------
  CoreId  LastInst  CntPerSec MaxCntPerSec  TotalIntCntLastSec    TotalIntCnt
       0         1         30           31                 980          12001
       1         0          0            2                   0             17

    CostTm   MCostTm  CostTmPerSec MCostTmPerSec  TotalIntCostTm       RunTm
      5102      6000        153060        186000        61230000        9189
         0        10             0            20             170        9189

-----------------------------NNIE UTILI INFO-------------------------------------
  CoreId  Utili
       0    15%
       1     0%
"""


def test_nnie_inferred_layout() -> None:
    assert parse_accel(NNIE_INFERRED, "nnie") == [
        AccelCore("0", 0.15, 12001), AccelCore("1", 0.0, 17)]


@pytest.mark.parametrize("text", ["", "hello world\n", "---A---\nfoo bar\nbaz\n"])
def test_accel_without_known_columns_raises(text: str) -> None:
    with pytest.raises(ParseError):
        parse_accel(text, "nnie")


def test_accel_values_before_header_raise() -> None:
    with pytest.raises(ParseError):
        parse_accel("-----X-----\n 1 2 3\n", "ive")


def test_sdk_version() -> None:
    version = sdk_version(sample("umap-sys.hi3518ev300.txt"))
    assert version == "Hi3516EV200_MPP_V1.0.1.1 B030 Release"
    assert sdk_version("nothing") is None


def test_hiddrs_real_run_sawtooth() -> None:
    text = sample("hiddrs.hi3559av100.run.txt")
    values = parse_ddrs(text)["ddrc0"]
    assert len(values) == 26 and values[0] == 0.03 and values[5] == 19.23
    # first interval dropped, the next three averaged
    assert ddr_utilization(text, 3) == {"ddrc0": pytest.approx((2.07 + 6.88 + 11.67) / 300)}
    assert ddr_utilization(text, 100)["ddrc0"] == pytest.approx(sum(values[1:]) / 25 / 100)


def test_bspddrs_and_two_controllers() -> None:
    text = ("ddr freq: 3200MHz\n"
            "ddrc[0][10.00%], rcount[1], wcount[2]\nddrc[0][20.50%], rcount[3], wcount[4]\n"
            "ddrc0[1.00%] ddrc1[2.00%]\nddrc0[3.00%] ddrc1[4.00%]\n")
    assert parse_ddrs(text) == {"ddrc0": [10.0, 20.5, 1.0, 3.0], "ddrc1": [2.0, 4.0]}
    assert ddr_utilization(text, 1) == {"ddrc0": pytest.approx(0.205),
                                        "ddrc1": pytest.approx(0.04)}


@pytest.mark.parametrize("text", [
    "", "ddrc0[5.00%]\n",  # nothing, or only the dropped first interval
    # the help text and its "do errro" is what a bad argument gets
    "*** Board tools : ver0.0.1_20121120 ***\ndo errro\n[END]\n",
])
def test_hiddrs_without_samples_raises(text: str) -> None:
    with pytest.raises(ParseError):
        ddr_utilization(text, 3)


def test_hiddrs_help_has_no_samples() -> None:
    with pytest.raises(ParseError):
        ddr_utilization(sample("hiddrs.hi3559av100.help.txt"), 3)
