"""What ``ssl`` costs the agent in RSS, and what TLS costs a served agent.

Two measurements, on every Python given (default: this one, and 3.8 if pyenv has it):

- imports: RSS after importing the agent's HTTP front (server and web config) without
  ``ssl``, then after ``import ssl`` in the same process;
- served: VmRSS of ``boardfleet-agent`` on the generic fixture after 20 scrapes, without
  a web config, with basic auth only, and with TLS, and whether ``ssl`` was loaded.

    .venv/bin/python benchmarks/agent_ssl_rss.py
"""

import argparse
import glob
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parent.parent
IMPORTS = """\
import sys
def rss():
    with open("/proc/self/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmRSS")).split()[1]) / 1024
bare = rss()
import boardfleet_agent.web.server, boardfleet_agent.web.config
before = rss(); loaded = "ssl" in sys.modules
import ssl
print("%.1f %.1f %s %.1f" % (before, rss(), loaded, bare))
"""


def pythons() -> List[str]:
    found = [sys.executable]
    found += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))[:1]
    return found


def pythonpath(python: str) -> str:
    """The agent's sources, and for another Python the bundle's pinned wheels."""
    paths = [str(REPO / "agent")]
    if python != sys.executable:
        sys.path.insert(0, str(REPO / "exporter"))
        from boardfleet.bundle import board_package

        paths += [str(board_package(n).parent) for n in ("prometheus_client", "tomli")]
    return os.pathsep.join(paths)


def served_rss(python: str, web: str | None, ctx: ssl.SSLContext | None,
               headers: dict) -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [python, "-m", "boardfleet_agent", "--sysroot", str(REPO / "tests/fixtures/generic"),
            "--listen", "127.0.0.1:%d" % port, "--statsd-listen", "off"]
    if web:
        args += ["--web.config.file", web]
    proc = subprocess.Popen(args, env={**os.environ, "PYTHONPATH": pythonpath(python)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "%s://127.0.0.1:%d/metrics" % ("https" if ctx else "http", port)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(urllib.request.Request(base, headers=headers),
                                       timeout=5, context=ctx).read()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(20):
            urllib.request.urlopen(urllib.request.Request(base, headers=headers), timeout=5,
                                   context=ctx).read()
        status = Path("/proc/%d/status" % proc.pid).read_text()
        maps = Path("/proc/%d/maps" % proc.pid).read_text()
        kb = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS")))
        return "%.1f MiB (_ssl %s)" % (kb / 1024, "loaded" if "_ssl" in maps else "not loaded")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    import base64

    import bcrypt

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", tmp + "/k.pem", "-out", tmp + "/c.pem"], check=True,
                       capture_output=True)
        hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
        Path(tmp, "auth.yml").write_text("basic_auth_users:\n  p: %s\n" % hashed)
        Path(tmp, "tls.yml").write_text("tls_server_config:\n  cert_file: %s/c.pem\n"
                                        "  key_file: %s/k.pem\n" % (tmp, tmp))
        ctx = ssl.create_default_context(cafile=tmp + "/c.pem")
        auth = {"Authorization": "Basic " + base64.b64encode(b"p:pw").decode()}
        for python in pythons():
            version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                                     capture_output=True, text=True).stdout.strip()
            out = subprocess.run([python, "-c", IMPORTS], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": pythonpath(python)},
                                 check=True).stdout.split()
            print("Python %s" % version)
            print("  imports: bare interpreter %s MiB; + server and web config %s MiB (ssl "
                  "loaded: %s); + import ssl %s MiB (+%.1f)"
                  % (out[3], out[0], out[2], out[1], float(out[1]) - float(out[0])))
            print("  served, no web config:  %s" % served_rss(python, None, None, {}))
            print("  served, basic auth:     %s" % served_rss(python, tmp + "/auth.yml", None,
                                                              auth))
            print("  served, TLS:            %s" % served_rss(python, tmp + "/tls.yml", ctx,
                                                              {}))


if __name__ == "__main__":
    main()
