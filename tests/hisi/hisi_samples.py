"""Reading the HiSilicon samples (tests/samples/hisi) as the board's file content."""

from support.paths import SAMPLES

HISI = SAMPLES / "hisi"
PROMPTS = ("~ #", "msh ", "# cat")


def sample(name: str) -> str:
    """The sample's text without the shell prompt line the capture started with."""
    lines = (HISI / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith(PROMPTS))


def sample_names(prefix: str):
    return sorted(p.name for p in HISI.glob(prefix + "*.txt"))
