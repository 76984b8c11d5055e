"""The offline agent bundle: one zipapp holding boardfleet_agent and tomli.

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
from typing import Dict, Iterable, List, Tuple

SHEBANG = b"#!/usr/bin/env python3\n"
# The zipapp's entry point. Python compiles what it imports from a zip at every start
# (a zip holds no bytecode for the board's Python), which leaves the agent about 1.1 MiB
# larger than bytecode compiled once (issue 18). ``agent.pyz --prepare-bytecode``, run
# by the installer, extracts the bundle beside it and compiles it for this Python; the
# agent then imports from there while the stamp (the inode, size and mtime of the file
# that was extracted) matches the bundle, and from the zip otherwise (a bundle replaced
# or rolled back).
MAIN = b'''\
import os
import sys

PYZ = os.path.dirname(os.path.abspath(__file__))
COMPILED = "%s.%s" % (PYZ, sys.implementation.cache_tag)


def stamp(st):
    return "%d %d %d\\n" % (st.st_ino, st.st_size, st.st_mtime_ns)


def prepare():
    import compileall
    import glob
    import shutil
    import zipfile

    for old in glob.glob(glob.escape(COMPILED) + ".new*"):  # left by a killed prepare
        pid = old[len(COMPILED) + 4:]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    new = "%s.new%d" % (COMPILED, os.getpid())
    try:
        with open(PYZ, "rb") as f:
            extracted = stamp(os.fstat(f.fileno()))
            with zipfile.ZipFile(f) as zf:
                zf.extractall(new)
        if not compileall.compile_dir(new, quiet=1):
            raise OSError("a module does not compile")
        with open(os.path.join(new, "STAMP"), "w") as f:
            f.write(extracted)
        if stamp(os.stat(PYZ)) != extracted:
            raise OSError("the bundle was replaced meanwhile")
        shutil.rmtree(COMPILED, ignore_errors=True)
        os.rename(new, COMPILED)
    except (OSError, zipfile.BadZipFile) as e:
        raise SystemExit("%s: bytecode not prepared in %s: %s" % (PYZ, new, e))
    finally:
        shutil.rmtree(new, ignore_errors=True)


if sys.argv[1:] == ["--prepare-bytecode"]:
    prepare()
    raise SystemExit(0)
try:
    with open(os.path.join(COMPILED, "STAMP")) as f:
        if f.read() == stamp(os.stat(PYZ)):
            sys.path.insert(0, COMPILED)
except OSError:
    pass

from boardfleet_agent.cli import main  # noqa: E402

raise SystemExit(main())
'''
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Boards run Python 3.8 (Ubuntu 20.04). The bundle carries this exact pure-Python wheel,
# checked against its sha256, so two builds on two days are identical: tomli 2.0.1 is the
# parser Python 3.11 ships as tomllib, so a config file reads the same on every board.
# The agent renders its exposition itself; prometheus_client is not needed on a board.
BOARD_WHEELS = {
    "tomli": ("tomli==2.0.1", "939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc"),
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "boardfleet"


def download_board_wheels(dest: Path, names: Iterable[str] = BOARD_WHEELS) -> List[Path]:
    """``pip download`` the pinned wheels into ``dest`` (pip checks every hash)."""
    dest.mkdir(parents=True, exist_ok=True)
    reqs = dest / "requirements.txt"
    reqs.write_text("".join("%s --hash=sha256:%s\n" % BOARD_WHEELS[n] for n in names))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes",
         "--only-binary=:all:", "--python-version", "3.8", "--implementation", "py",
         "--abi", "none", "--platform", "any", "-d", str(dest), "-r", str(reqs)],
        capture_output=True, text=True, timeout=300)
    wheels = sorted(dest.glob("*.whl"))
    if r.returncode != 0 or len(wheels) != len(list(names)):
        raise RuntimeError(
            "cannot fetch %s for Python 3.8 boards: %s; build the bundle on a machine that "
            "reaches PyPI and pass it with --bundle" % (
                ", ".join(BOARD_WHEELS[n][0] for n in names),
                (r.stderr.strip() or "no wheel")[-300:]))
    return wheels


def board_package(name: str, cache: Path = CACHE) -> Path:
    """The pinned, Python 3.8-compatible package directory ``name`` (a key of
    BOARD_WHEELS), cached after one ``pip download`` (the central machine reaches PyPI;
    boards do not)."""
    requirement, digest = BOARD_WHEELS[name]
    target = cache / "board-site" / requirement
    pkg = target / name
    if pkg.is_dir():
        return pkg
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download_board_wheels(Path(tmp), [name])[0]
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != digest:
            raise RuntimeError("%s: sha256 differs from the pinned %s" % (wheel.name, digest))
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
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
    for name in BOARD_WHEELS:
        if name not in sources:
            dirs[name] = board_package(name)
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
