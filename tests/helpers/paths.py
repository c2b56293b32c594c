"""Where the checkout, its configs and the real data are."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
RAW_CSV = ROOT / "data" / "raw" / "ObesityDataSet_raw_and_data_sinthetic.csv"
# the md5 the DVC pointer pins (never written out in a test: a new data version changes one file)
RAW_MD5 = yaml.safe_load(RAW_CSV.with_name(RAW_CSV.name + ".dvc").read_text())["outs"][0]["md5"]


def write_lines(folder: Path, lines: list[str], name: str = "bad.csv") -> Path:
    """A small CSV made for a bad case: `lines` (header first) as a file in `folder`."""
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path
