"""``--web.config.file`` in exporter-toolkit's YAML and key names; gzip; lazy ssl."""

import gzip
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Tuple

import bcrypt
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from support.agent import served_agent
from support.paths import FIXTURES

from boardfleet_agent.config import ConfigError
from boardfleet_agent.web import yamlsubset
from boardfleet_agent.web.config import load_web_config
from boardfleet_agent.web.server import MetricsServer, accepts_gzip

GENERIC = str(FIXTURES / "generic")

# What labs write for node_exporter, and what exporter-toolkit's docs show.
EXAMPLES = [
    """\
    # node_exporter's web config
    tls_server_config:
      cert_file: /etc/node_exporter/node.crt
      key_file: "/etc/node_exporter/node.key"
      client_auth_type: 'RequireAndVerifyClientCert'
      client_ca_file: ca.crt   # the scrapers' CA
      min_version: TLS12
      cipher_suites:
      - TLS_AES_128_GCM_SHA256
      - TLS_CHACHA20_POLY1305_SHA256
      curve_preferences: [X25519, "CurveP256"]
    http_server_config:
      http2: false
      headers:
        X-Frame-Options: deny
    basic_auth_users:
      alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze
      "bob smith": '$2y$10$hLqFl9jSjoAAy95Z/zw8Ye8wkdMBM8c5Bn1ptYqP/AXyV0.oy0S8m'
    """,
    "---\nbasic_auth_users: {}\nrate_limit:\n",
    "a:\n  b:\n    - x\n    -\n      c: d\n  e: 'it''s'\n",
    'k: "tab\\there \\u00e9 \\x41 \\\\ \\" #not a comment" # a comment\n',
    "k: a#b\nl: ~\nm: []\nn:\n- \n",
]


@pytest.mark.parametrize("doc", EXAMPLES)
def test_reader_agrees_with_pyyaml_on_web_config_files(doc: str) -> None:
    doc = textwrap.dedent(doc)
    assert yamlsubset.loads(doc) == yaml.load(doc, Loader=yaml.BaseLoader)


@pytest.mark.parametrize("doc, line", [
    ("a: &x 1\n", 1), ("a: !!str 1\n", 1), ("a: |\n  text\n", 1), ("a: {b: c}\n", 1),
    ("a: 1\na: 2\n", 2), ("a:\n\tb: 1\n", 2), ("a: 'open\n", 1), ("a:\n  b: 1\n c: 2\n", 3),
    ("- a\n- b: c\n", 2), ("a: 1\n---\nb: 2\n", 2), ("a: 'x' y\n", 1), ('a: "\\q"\n', 1),
])
def test_yaml_beyond_the_subset_is_refused_naming_the_line(doc: str, line: int) -> None:
    with pytest.raises(ValueError, match="line %d" % line):
        yamlsubset.loads(doc)


plain = st.from_regex(r"[A-Za-z_$/.][A-Za-z0-9_$/.=+-]{0,20}", fullmatch=True)
texts = st.one_of(plain, st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
values = st.recursive(
    texts, lambda inner: st.one_of(st.lists(texts, max_size=4),
                                   st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12)


@given(st.dictionaries(texts, values, min_size=1, max_size=5), st.booleans())
@settings(max_examples=200, deadline=None)
def test_documents_pyyaml_writes_read_back_the_same(doc: Dict, flow_lists: bool) -> None:
    text = yaml.safe_dump(doc, default_flow_style=None if flow_lists else False,
                          allow_unicode=True, width=10**6)
    try:
        got = yamlsubset.loads(text)
    except ValueError:
        # Flow lists of nested blocks, multi-line strings: refused, never misread.
        return
    assert got == doc


YAML_BITS = st.sampled_from([
    "\n", " ", "  ", "- ", "-", ": ", ":", "#", " #", "'", '"', "\\", "[", "]", ",", "{}", "{",
    "---", "~", "key", "a", "$2b$", "&x", "*x", "!!str", "|", ">", "\t", "\r", "\\x41",
    "\\u00e9", "é", "\x00", "?",
])


@given(st.one_of(st.text(max_size=200), st.lists(YAML_BITS, max_size=40).map("".join)))
@settings(max_examples=500, deadline=None)
def test_any_text_is_refused_or_read_as_yaml_reads_it(text: str) -> None:
    try:
        got = yamlsubset.loads(text)
    except ValueError:
        return
    assert got == yaml.load(text, Loader=yaml.BaseLoader)


def _web(tmp_path: Path, text: str) -> str:
    path = tmp_path / "web.yml"
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize("text, fragment", [
    ("tls_server_confg:\n  cert_file: a\n", "tls_server_confg: unknown setting"),
    ("tls_server_config:\n  certfile: a\n", "tls_server_config.certfile: unknown setting"),
    ("http_server_config:\n  http3: true\n", "http_server_config.http3: unknown setting"),
    ("http_server_config:\n  http2: maybe\n", "http_server_config.http2 must be true or false"),
    ("http_server_config:\n  headers:\n    X-Powered-By: me\n", "headers.X-Powered-By: not a"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [X]\n",
     "tls_server_config.cipher_suites: Go cipher suite names are not supported"),
    ("rate_limit:\n  interval: 1s\n", "rate_limit: not supported"),
    ("tls_server_config:\n  cert_file: a\n", "needs cert_file and key_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Any\n",
     "client_auth_type: 'Any' is not one of"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
     "RequestClientCert\n", "RequestClientCert is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: "
     "VerifyClientCertIfGiven\n", "needs client_ca_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: SSL3\n",
     "min_version: 'SSL3' is not one of"),
    ("tls_server_config:\n  cert_file: /absent.crt\n  key_file: /absent.key\n",
     "cannot load TLS certificate"),
    ("basic_auth_users:\n  prometheus: plaintext\n", "basic_auth_users.prometheus must be a "
     "bcrypt hash"),
    ("basic_auth_users: [a]\n", "basic_auth_users must be a mapping"),
    ("- a\n", "the file must be a mapping"),
    ('[tls]\ncert_file = "a"\n', "[tls] became tls_server_config"),
])
def test_bad_web_configs_name_the_file_and_key(tmp_path, text: str, fragment: str) -> None:
    path = _web(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_web_config(path)
    assert str(e.value).startswith("web config %s: " % path)
    assert fragment in str(e.value)


def test_ssl_is_imported_only_when_tls_is_configured(tmp_path) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    auth = _web(tmp_path, "basic_auth_users:\n  p: %s\n" % hashed)
    certs = _certs(tmp_path)
    tls = tmp_path / "tls.yml"
    tls.write_text("tls_server_config:\n  cert_file: %s\n  key_file: %s\n"
                   % (certs["server.crt"], certs["server.key"]))
    code = textwrap.dedent("""\
        import sys
        from boardfleet_agent.web.server import MetricsServer
        from boardfleet_agent.web.config import load_web_config
        MetricsServer(("127.0.0.1", 0), bytes, "generic", load_web_config(%r)).server_close()
        print("ssl" in sys.modules)
        load_web_config(%r)
        print("ssl" in sys.modules)
        """) % (auth, str(tls))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["False", "True"]


def _certs(tmp_path: Path) -> Dict[str, Path]:
    """A CA, and a server (127.0.0.1) and a client certificate it signed."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60,
                       cwd=tmp_path)

    if not (tmp_path / "client.crt").exists():
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt")
        for name, ext in (("server", "subjectAltName=IP:127.0.0.1"),
                          ("client", "extendedKeyUsage=clientAuth")):
            run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
                "-keyout", name + ".key", "-out", name + ".csr")
            (tmp_path / (name + ".ext")).write_text(ext + "\n")
            run("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", name + ".ext",
                "-out", name + ".crt")
    return {n: tmp_path / n for n in ("ca.crt", "server.crt", "server.key", "client.crt",
                                      "client.key")}


def _get(url: str, ctx: ssl.SSLContext | None = None,
         headers: Dict[str, str] | None = None) -> Tuple[int, Dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_client_certificates_and_headers_from_a_node_exporter_web_config(tmp_path) -> None:
    c = _certs(tmp_path)
    web = _web(tmp_path, """\
        tls_server_config:
          cert_file: %s
          key_file: %s
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: %s
        http_server_config:
          headers:
            X-Frame-Options: deny
            Strict-Transport-Security: max-age=31536000
        """ % (c["server.crt"], c["server.key"], c["ca.crt"]))
    with_cert = ssl.create_default_context(cafile=str(c["ca.crt"]))
    with_cert.load_cert_chain(str(c["client.crt"]), str(c["client.key"]))
    with served_agent(GENERIC, "--web.config.file", web, tls_context=with_cert) as (base, _):
        status, headers, body = _get(base + "/metrics", with_cert)
        assert status == 200 and b"board_cpu_seconds_total" in body
        assert headers["X-Frame-Options"] == "deny"
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        without = ssl.create_default_context(cafile=str(c["ca.crt"]))
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            _get(base + "/metrics", without)


@pytest.mark.parametrize("header, gz", [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate;q=1, GZIP;q=0.5", True),
    ("gzip;q=0", False), ("identity", False), ("", False), ("gzip;q=x", False),
    ("x-gzip", True),
])
def test_accept_encoding(header: str, gz: bool) -> None:
    assert accepts_gzip(header) is gz


def test_gzip_when_the_scraper_accepts_it() -> None:
    body = "".join('board_x{i="%d"} %d\n' % (i, i) for i in range(2000)).encode()
    srv = MetricsServer(("127.0.0.1", 0), lambda: body, "generic")
    srv.serve_in_thread()
    try:
        url = "http://127.0.0.1:%d/metrics" % srv.server_address[1]
        _, plain_headers, plain = _get(url)
        _, gz_headers, packed = _get(url, headers={"Accept-Encoding": "gzip"})
    finally:
        srv.shutdown()
        srv.server_close()
    assert plain == body and "Content-Encoding" not in plain_headers
    assert gz_headers["Content-Encoding"] == "gzip"
    assert int(gz_headers["Content-Length"]) == len(packed) < len(body) // 4
    assert gzip.decompress(packed) == body


def test_a_served_agent_gzips_the_same_exposition() -> None:
    with served_agent(GENERIC) as (base, _):
        _, headers, packed = _get(base + "/metrics", headers={"Accept-Encoding": "gzip"})
        _, _, plain = _get(base + "/metrics")
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"

    def shape(text: bytes):  # names and label sets; values move between two scrapes
        return sorted((s.name, sorted(s.labels.items()))
                      for f in text_string_to_metric_families(text.decode())
                      for s in f.samples if not s.name.startswith(("process_", "python_")))

    assert shape(gzip.decompress(packed)) == shape(plain)


KEYS = st.sampled_from([
    "tls_server_config", "cert_file", "key_file", "client_ca_file", "client_auth_type",
    "min_version", "max_version", "prefer_server_cipher_suites", "http_server_config",
    "http2", "headers", "X-Frame-Options", "basic_auth_users", "prometheus", "rate_limit",
    "cipher_suites", "NoClientCert", "TLS13", "true", "$2b$04$x", "/dev/null", "",
])
web_values = st.recursive(KEYS | st.text(max_size=8), lambda inner: st.lists(
    inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10)


@given(st.dictionaries(KEYS, web_values, max_size=4) | web_values)
@settings(max_examples=300, deadline=None)
def test_any_web_config_loads_or_gives_a_config_error(tmp_path_factory, doc) -> None:
    path = tmp_path_factory.mktemp("web") / "web.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, width=10**6))
    try:
        load_web_config(str(path))
    except ConfigError as e:
        assert str(e).startswith("web config %s: " % path)
