"""``boardfleet`` subcommands, one module each, found by :func:`boardfleet.cli.build_parser`."""
