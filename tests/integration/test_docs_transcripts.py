"""The transcripts the docs show in ```console blocks: each `$ python -m obesity...` command is
run and prints exactly the lines the page shows (a `...` in a shown line stands for text left
out, e.g. a set whose order Python does not fix)."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import RAW_CSV, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def transcripts() -> list[tuple[str, str, list[str]]]:
    """(page, command, the lines shown after it) of every `$ ` line in a console block."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.S):
            for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
                command, *shown = chunk.rstrip("\n").split("\n")
                found.append((page.name, command, shown))
    return found


TRANSCRIPTS = transcripts()


def write_bad_csv(path: Path) -> None:
    """docs/training.md's bad.csv: the raw file's first rows, a Height in cm on line 3 and an
    unknown MTRANS on line 6."""
    with open(RAW_CSV, newline="") as f:
        header, *rows = [row for _, row in zip(range(8), csv.reader(f), strict=False)]
    rows[1][header.index("Height")] = "175"
    rows[4][header.index("MTRANS")] = "Teleport"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def test_the_docs_show_transcripts():
    assert len(TRANSCRIPTS) >= 6


@pytest.mark.parametrize("page,command,shown", TRANSCRIPTS, ids=[c for _, c, _ in TRANSCRIPTS])
def test_a_transcript_is_what_the_command_prints(page, command, shown, tmp_path):
    argv = shlex.split(command)
    assert argv[:3] in (["python", "-m", "obesity.train"], ["python", "-m", "obesity.serve"]), command
    write_bad_csv(tmp_path / "bad.csv")
    done = subprocess.run([sys.executable, *argv[1:], f"paths.root={ROOT}",
                           f"paths.outputs={tmp_path / 'outputs'}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    printed = (done.stdout + done.stderr).splitlines()
    patterns = [".*".join(map(re.escape, line.split("..."))) for line in shown]
    assert len(printed) == len(shown), f"{page}: {command}\n" + "\n".join(printed)
    for pattern, line in zip(patterns, printed, strict=True):
        assert re.fullmatch(pattern, line), f"{page}: {command}\nshown:   {pattern}\nprinted: {line}"
    assert done.returncode == (1 if printed[0].startswith("error:") else 0)
    assert not list(tmp_path.rglob("mlflow.db"))  # a mistake stops before anything is recorded
