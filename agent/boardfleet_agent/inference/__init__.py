"""The agent's push pipeline: apps report (``report``) -> StatsD intake (``intake``,
``statsd``) and log tails (``logtail``) -> latency histograms (``latency``) and model
loads (``modelload``), served as one custom collector (``pipeline.Inference``)."""
