"""The offline agent bundle: one zipapp holding boardfleet_agent and prometheus_client.

Boards have no internet, so the agent travels as a single file run with the board's
``python3``. The zip is deterministic (sorted entries, fixed timestamps and modes, no
bytecode), so the same sources give the same sha256 and a re-install changes nothing.
"""

import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterable, Tuple

SHEBANG = b"#!/usr/bin/env python3\n"
MAIN = b"from boardfleet_agent.cli import main\n\nraise SystemExit(main())\n"
PACKAGES = ("boardfleet_agent", "prometheus_client")
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Boards run Python 3.8 (Ubuntu 20.04); prometheus-client 0.22+ needs 3.9, so the
# bundle carries the newest release line that still runs there.
BOARD_PROMETHEUS_CLIENT = "prometheus-client>=0.17,<0.22"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "boardfleet"


def board_prometheus_client(cache: Path = CACHE) -> Path:
    """A Python 3.8-compatible prometheus_client package directory, cached after one
    ``pip download`` (the central machine reaches PyPI; boards do not)."""
    target = cache / "py38-site"
    pkg = target / "prometheus_client"
    if pkg.is_dir():
        return pkg
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.8", "-d", tmp,
             BOARD_PROMETHEUS_CLIENT], capture_output=True, text=True, timeout=300)
        wheels = list(Path(tmp).glob("prometheus_client-*.whl"))
        if r.returncode != 0 or not wheels:
            raise RuntimeError(
                "cannot fetch %s for Python 3.8 boards: %s; build the bundle on a machine "
                "that reaches PyPI and pass it with --bundle" % (
                    BOARD_PROMETHEUS_CLIENT, (r.stderr.strip() or "no wheel")[-300:]))
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache))
        with zipfile.ZipFile(wheels[0]) as zf:
            zf.extractall(staging)
    if target.exists():  # another build got there first
        shutil.rmtree(staging)
    else:
        os.replace(staging, target)
    return pkg


def package_dir(name: str) -> Path:
    """Where an importable package's sources are."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package %s is not installed here; cannot bundle it" % name)
    return Path(next(iter(spec.submodule_search_locations)))


def _files(name: str, root: Path) -> Iterable[Tuple[str, Path]]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            yield "%s/%s" % (name, rel.as_posix()), path


def build(sources: Dict[str, Path] | None = None) -> bytes:
    """The zipapp's bytes. ``sources`` overrides where a package is read from."""
    sources = sources or {}
    dirs = {"boardfleet_agent": package_dir("boardfleet_agent")}
    if "prometheus_client" not in sources:
        dirs["prometheus_client"] = board_prometheus_client()
    dirs.update(sources)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = [("__main__.py", MAIN)]
        for name in sorted(dirs):
            entries.extend((arc, path.read_bytes()) for arc, path in _files(name, dirs[name]))
        for arc, data in sorted(entries):
            info = zipfile.ZipInfo(arc, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return SHEBANG + buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: str, data: bytes) -> None:
    """Save a bundle (for ``--bundle FILE`` and offline copies)."""
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755)
