"""Pure parsers: board text in, records out. They raise only ``ParseError``."""
