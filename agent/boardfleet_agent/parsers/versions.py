"""Software versions a board states about itself, for ``board_info`` labels.

Pure functions; each returns "" when the text states no version, never raises. Values
are capped at :data:`MAX_LEN` printable characters so a corrupt file cannot make a huge
or unprintable label.
"""

import shlex

MAX_LEN = 64


def capped(value: str) -> str:
    """``value`` with whitespace runs folded, unprintable characters dropped, capped."""
    text = "".join(c for c in " ".join(value.split()) if c.isprintable())
    return text[:MAX_LEN]


def os_release(text: str) -> str:
    """``/etc/os-release``: ``PRETTY_NAME``, else ``NAME VERSION`` (quoting per shell)."""
    fields = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not key.strip().isidentifier():
            continue
        try:
            words = shlex.split(raw, comments=False)
        except ValueError:  # unbalanced quote, e.g. a cut line
            continue
        fields[key.strip()] = " ".join(words)
    if fields.get("PRETTY_NAME"):
        return capped(fields["PRETTY_NAME"])
    return capped(" ".join(v for v in (fields.get("NAME"), fields.get("VERSION")) if v))


def first_line(text: str) -> str:
    """Horizon ``/etc/version`` (``4.0.5``, ``x3_ubuntu_v1.1.6``): its first line."""
    for line in text.splitlines():
        if line.strip():
            return capped(line)
    return ""
