"""`python -m obesity.predict`: score a file offline with a registered version.

    python -m obesity.predict INPUT OUTPUT [KEY=VALUE ...]

INPUT and OUTPUT are CSV or Parquet (by extension). Every row is checked as the service checks a
request; a bad row stops the run naming its line (on_error=fail, nothing written) or goes to a
rejects file with its problems (on_error=skip). OUTPUT holds the input's columns with the
prediction and each class's probability appended; OUTPUT.json says which version scored it.

KEY=VALUE: Hydra overrides of configs/predict.yaml, e.g. alias=challenger, version=3,
on_error=skip, rejects=bad.csv, chunk_rows=50000, use_onnx=true, registry=server.
Exit code 0 when the file was scored (rows rejected by on_error=skip included), 1 on an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obesity.errors import exit_on_error
from obesity.runtime import command_line_process, using


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obesity.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="the file to score (.csv, .parquet)")
    parser.add_argument("output", help="where the scored rows go (.csv, .parquet)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with using(), exit_on_error():
        from obesity.batch.score import score_file
        from obesity.config import checks
        from obesity.config.compose import compose, typed
        from obesity.config.schemas import PredictConfig

        cfg = typed(compose(args.overrides, config_name="predict"), PredictConfig)
        checks.check(cfg)
        done = score_file(cfg, Path(args.input), Path(args.output))
    rate = done.rows / done.seconds if done.seconds else 0.0
    said = (f"scored {done.scored:,} of {done.rows:,} row(s) of {args.input} with {done.model} "
            f"into {done.output} in {done.seconds:.1f} s ({rate:,.0f} rows/s)")
    if done.rejects:
        said += f"; {done.rejected:,} rejected: {done.rejects}"
    print(f"{said}; record: {done.sidecar}")
    return 0


if __name__ == "__main__":
    command_line_process()
    sys.exit(main())
