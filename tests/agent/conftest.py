"""Fixtures shared by the agent tests."""

import os
import zipfile

import pytest
from support import python38


def _python38() -> str:
    """The 3.8 interpreter; under CI a missing one fails the test, elsewhere it is
    skipped with the reason shown (and named in the run's header, tests/conftest.py)."""
    python = python38.find()
    if python is None:
        why = ("no Python 3.8 interpreter on this machine (scripts/find-python38; "
               "scripts/setup installs one where uv or pyenv can): the agent's 3.8 "
               "support is NOT tested")
        if os.environ.get("CI") == "true":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return python


@pytest.fixture(scope="session")
def py38_path(tmp_path_factory) -> str:
    """``<python3.8>:<site dir>``: a 3.8 interpreter and the bundle's pinned wheels for it."""
    from boardfleet.bundle import download_board_wheels

    python = _python38()
    site = tmp_path_factory.mktemp("site38")
    for whl in download_board_wheels(tmp_path_factory.mktemp("wheels")):
        zipfile.ZipFile(whl).extractall(site)
    return python + os.pathsep + str(site)
