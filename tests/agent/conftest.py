"""Fixtures shared by the agent tests."""

import glob
import os
import shutil
import subprocess
import zipfile

import pytest


def _python38() -> str:
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates += [p for p in [shutil.which("python3.8")] if p]
    for python in candidates:
        r = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and r.stdout.strip() == "(3, 8)":
            return python
    pytest.skip("no working Python 3.8 interpreter on this machine")


@pytest.fixture(scope="session")
def py38_path(tmp_path_factory) -> str:
    """``<python3.8>:<site dir>``: a 3.8 interpreter and the bundle's pinned wheels for it."""
    from boardfleet.bundle import download_board_wheels

    python = _python38()
    site = tmp_path_factory.mktemp("site38")
    for whl in download_board_wheels(tmp_path_factory.mktemp("wheels")):
        zipfile.ZipFile(whl).extractall(site)
    return python + os.pathsep + str(site)
