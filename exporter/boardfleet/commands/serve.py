"""``boardfleet serve``: run the fleet service (inventory API, HTTP SD, agentless probes)."""

import argparse
import functools
import logging
import os
import sys
from pathlib import Path

from boardfleet.inventory import InventoryError, load
from boardfleet.probe import Prober
from boardfleet.replicas import Replica
from boardfleet.transports.pool import SessionPool
from boardfleet.transports.secrets import Secrets, SecretsError, load_secrets, read_private
from boardfleet.transports.ssh import connect_ssh
from boardfleet.transports.telnet import connect_telnet

DEFAULT_LISTEN = "127.0.0.1:9120"


def register(sub: "argparse._SubParsersAction") -> None:
    p = sub.add_parser("serve", help="run the fleet service (HTTP SD, /probe, /boards API)",
                       description="Serve the inventory API, Prometheus HTTP SD (/sd) and "
                                   "agentless probes (/probe?target=<board>).")
    p.add_argument("-i", "--inventory", default="boards.yml", metavar="FILE",
                   help="inventory file, rewritten by POST/DELETE /boards (default boards.yml)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help="address to serve on (default %s)" % DEFAULT_LISTEN)
    p.add_argument("--secrets", metavar="FILE",
                   help="board credentials (YAML, mode 0600): user, password, key_file")
    p.add_argument("--token-file", metavar="FILE",
                   help="bearer token for write endpoints (mode 0600); without it writes "
                        "are refused")
    p.add_argument("--probe-token-file", metavar="FILE",
                   help="bearer token GET /probe requires (mode 0600; Prometheus: "
                        "authorization.credentials_file); without it /probe is open")
    p.add_argument("--known-hosts", metavar="FILE",
                   help="board SSH host keys (default: known_hosts next to the inventory, "
                        "the file 'boardfleet agent install' keeps); it must exist")
    p.add_argument("--insecure-accept-any-host-key", action="store_true",
                   help="do not check SSH host keys (a board's impostor gets the "
                        "passwords of secrets.yml); for throwaway test setups only")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per-probe timeout, capped by Prometheus' scrape timeout (default 10)")
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="probes running at once (default 64)")
    p.add_argument("--runbook", metavar="FILE",
                   help="the runbook served at /runbook, where every alert links "
                        "(default: prometheus/RUNBOOK.md of this checkout)")
    p.add_argument("--replica", default="0/1", metavar="I/N",
                   help="this is replica I (0-based) of N: list and probe only the agentless "
                        "boards whose name hashes to I (docs/scaleout.md; default 0/1)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from boardfleet.service.app import ServiceState, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    host, _, port = args.listen.rpartition(":")
    try:
        inventory = load(args.inventory)
        secrets = load_secrets(args.secrets) if args.secrets else Secrets()
        token = _token(args.token_file)
        probe_token = _token(args.probe_token_file)
        known_hosts = None if args.insecure_accept_any_host_key else (
            args.known_hosts or os.path.join(os.path.dirname(os.path.abspath(args.inventory)),
                                             "known_hosts"))
        if args.known_hosts and not os.path.isfile(args.known_hosts):
            raise ValueError(
                "--known-hosts %s does not exist. Create it with 'boardfleet agent install "
                "--accept-new-host-key' or ssh-keyscan, or leave the option out to use "
                "known_hosts next to the inventory" % args.known_hosts)
        replica = Replica.parse(args.replica)
        if not host or not port.isdigit() or args.timeout <= 0 or args.concurrency < 1:
            raise ValueError("bad --listen, --timeout or --concurrency")
    except (InventoryError, SecretsError, ValueError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    if known_hosts is None:
        logging.warning("SSH host keys are NOT checked (--insecure-accept-any-host-key)")
    elif not os.path.isfile(known_hosts):
        logging.warning("%s does not exist yet: SSH probes are refused until the board's "
                        "host key is in it (boardfleet agent install --accept-new-host-key "
                        "or ssh-keyscan)", known_hosts)
    pool = SessionPool({
        "ssh": functools.partial(connect_ssh, known_hosts=known_hosts),
        "telnet": connect_telnet,
    }, secrets)
    state = ServiceState(inventory, Prober(pool), token, args.timeout, args.concurrency,
                         probe_token=probe_token,
                         runbook=Path(args.runbook) if args.runbook else None)
    state.replica = replica
    uvicorn.run(create_app(state), host=host.strip("[]"), port=int(port),
                log_level="warning")
    return 0


def _token(path: str | None) -> str | None:
    """The bearer token in ``path`` (mode 0600), None without a path."""
    if not path:
        return None
    token = read_private(path).strip()
    if not token:
        raise SecretsError("%s is empty" % path)
    return token
