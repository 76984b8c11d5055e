"""Collectors, one per module; each registers itself with ``@register``.

MODULES names them all (``registry.all_collectors`` imports these; a test checks the list
against the files). A list rather than ``pkgutil.iter_modules``, which imports
``inspect`` and with it ``ast``, ``dis`` and ``tokenize``: about 0.9 MiB on a board.
"""

MODULES = (
    "bpu", "cpu", "cpufreq", "dmabuf", "dmabuf_process", "filesystem", "hisi_ddr",
    "hisi_npu", "hisi_vb", "horizon_ddr", "info", "ion", "kgsl", "loadavg", "memory", "mmz",
    "processes", "qcom_ddr", "textfile", "thermal",
)
