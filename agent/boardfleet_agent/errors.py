"""Error types shared by sources, parsers and collectors."""


class BoardfleetError(Exception):
    """Base class for all errors the agent raises on purpose."""


class ParseError(BoardfleetError):
    """Text did not match the format a parser expects.

    Every parser documents that this is the only exception it raises on bad input.
    """


class NoData(BoardfleetError):
    """The hardware or interface a collector reads is absent on this board.

    Not a failure: the collector exports nothing and is not marked as failing.
    """


class SourceError(BoardfleetError):
    """A source could not deliver a file or tool output (unreadable, timed out, ...)."""
