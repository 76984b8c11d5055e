"""``boardfleet serve``: run the fleet service (inventory API, HTTP SD, agentless probes)."""

import argparse
import functools
import logging
import sys

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
    p.add_argument("--known-hosts", metavar="FILE",
                   help="check board SSH host keys against this file (default: accept any)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per-probe timeout, capped by Prometheus' scrape timeout (default 10)")
    p.add_argument("--concurrency", type=int, default=64, metavar="N",
                   help="probes running at once (default 64)")
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
        token = read_private(args.token_file).strip() if args.token_file else None
        if token == "":
            raise SecretsError("%s is empty" % args.token_file)
        replica = Replica.parse(args.replica)
        if not host or not port.isdigit() or args.timeout <= 0 or args.concurrency < 1:
            raise ValueError("bad --listen, --timeout or --concurrency")
    except (InventoryError, SecretsError, ValueError) as e:
        sys.stderr.write("boardfleet: %s\n" % e)
        return 2
    pool = SessionPool({
        "ssh": functools.partial(connect_ssh, known_hosts=args.known_hosts),
        "telnet": connect_telnet,
    }, secrets)
    state = ServiceState(inventory, Prober(pool), token, args.timeout, args.concurrency)
    state.replica = replica
    uvicorn.run(create_app(state), host=host.strip("[]"), port=int(port),
                log_level="warning")
    return 0
