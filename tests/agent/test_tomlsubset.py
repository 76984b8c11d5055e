"""The Python 3.8 TOML fallback agrees with tomllib on the subset it supports."""

import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boardfleet_agent.tomlsubset import loads

CONFIG = """
# boardfleet agent
listen = "0.0.0.0:9776"   # comment after a value
platform = 'hisi'
disable_defaults = false

[collectors.mmz]
enabled = true
interval = 2.5

[collectors.processes]
names = [
  "hrt_model_exec",  # the BPU benchmark
  "sample_nnie*",
]
[statsd]
"max models" = 50
"""


def test_config_example_matches_tomllib() -> None:
    assert loads(CONFIG) == tomllib.loads(CONFIG)


@pytest.mark.parametrize("bad", ["x = ", "x = [1, 2", "[a", "x = 1\nx = 2", "= 3",
                                 'x = "unterminated', "x = nope", "[[arr]]"])
def test_bad_documents_raise_value_error_naming_the_line(bad: str) -> None:
    with pytest.raises(ValueError, match="line"):
        loads(bad)


keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
scalars = st.one_of(
    st.integers(-10**6, 10**6), st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: round(f, 3)),
)
values = st.one_of(scalars, st.lists(st.integers(-99, 99), max_size=4),
                   st.lists(st.text("abc xyz", max_size=5), max_size=3))


def _dump(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, list):
        return "[" + ", ".join(_dump(x) for x in v) + "]"
    return repr(v)


@given(st.dictionaries(keys, values, max_size=5),
       st.dictionaries(keys, st.dictionaries(keys, values, max_size=4), max_size=3))
def test_generated_documents_parse_like_tomllib(top: dict, tables: dict) -> None:
    lines = ["%s = %s" % (k, _dump(v)) for k, v in top.items()]
    for name, table in tables.items():
        if name in top:
            continue
        lines.append("[%s]" % name)
        lines += ["%s = %s" % (k, _dump(v)) for k, v in table.items()]
    doc = "\n".join(lines) + "\n"
    assert loads(doc) == tomllib.loads(doc)
