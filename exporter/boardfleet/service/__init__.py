"""The FastAPI fleet service: inventory API, Prometheus HTTP SD and agentless probes."""
