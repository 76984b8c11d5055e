"""The agent's web side: the HTTP server for ``/metrics``, its exporter-toolkit web config
(TLS, basic auth, headers) and listen-address parsing."""
