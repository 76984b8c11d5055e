"""Where the repository's pieces are."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = REPO / "tests" / "golden"
SAMPLES = REPO / "tests" / "samples"
BOARDS = sorted(p.name for p in FIXTURES.iterdir() if (p / "proc").is_dir())
