"""File-mode helpers: run code under a cautious admin's umask."""

import os
from typing import Iterator

import pytest


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """umask 077 for the test: files boardfleet writes must not depend on the umask."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
