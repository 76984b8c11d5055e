"""``board_info`` software versions: os-release, Horizon /etc/version, HiSilicon MPP line."""

from hypothesis import given
from hypothesis import strategies as st
from support.agent import run_once
from support.paths import FIXTURES

from boardfleet_agent.parsers.versions import MAX_LEN, first_line, os_release


def test_os_release_pretty_name_and_fallbacks() -> None:
    assert os_release('PRETTY_NAME="Ubuntu 22.04.5 LTS"\nNAME="Ubuntu"\n') == "Ubuntu 22.04.5 LTS"
    assert os_release("NAME=Buildroot\nVERSION=2023.02\n") == "Buildroot 2023.02"
    assert os_release('PRETTY_NAME="cut\n') == ""  # unbalanced quote: a cut line
    assert os_release("garbage\n\x00\n") == ""


def test_rdk_version_file_both_generations() -> None:
    """Values from rdk_s_doc docs/08_FAQ/01_hardware_and_system.md (``cat /etc/version``)."""
    assert first_line("2.0.0\n") == "2.0.0"
    assert first_line("\nx3_ubuntu_v1.1.6\n") == "x3_ubuntu_v1.1.6"


@given(st.text(max_size=500))
def test_versions_are_capped_printable_and_never_raise(text: str) -> None:
    for value in (os_release(text), first_line(text), os_release("PRETTY_NAME=" + text)):
        assert len(value) <= MAX_LEN and value.isprintable()


def test_board_info_labels_on_the_fixtures() -> None:
    s600 = run_once(str(FIXTURES / "s600"))
    assert 'os_version="Ubuntu 22.04.5 LTS"' in s600 and 'sdk_version="4.0.5"' in s600
    hisi = run_once(str(FIXTURES / "hi3516ev200"))
    assert 'sdk_version="Hi3516EV200_MPP_V1.0.1.1 B030 Release"' in hisi
