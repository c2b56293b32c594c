"""`python -m obesity.feedback`: labels that arrive in bulk, and the labelled traffic as data.

    python -m obesity.feedback labels.csv [--replace] [KEY=VALUE ...]
        store the labels of a CSV file (request_id,label[,row]) beside the prediction log,
        all or none, as POST /feedback/csv does
    python -m obesity.feedback export [--out PATH] [--no-dvc] [KEY=VALUE ...]
        write the labelled rows as a contract-valid CSV (default data/feedback/<model>.csv)
        and `dvc add` it: a data version training can take (data.extra=[PATH])

KEY=VALUE: Hydra overrides of configs/monitor.yaml, e.g. registry=server (PREDICTION_LOG_URL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obesity.errors import exit_on_error, printable
from obesity.runtime import using


def main(argv: list[str] | None = None) -> int:
    with using():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    exporting = bool(argv) and argv[0] == "export"
    parser = argparse.ArgumentParser(
        prog="python -m obesity.feedback" + (" export" if exporting else ""), description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if exporting:
        argv = argv[1:]
        parser.add_argument("--out", default=None, help="where (default: monitor.labels_export)")
        parser.add_argument("--no-dvc", action="store_true", help="do not `dvc add` the file")
    else:
        parser.add_argument("file", help="a CSV of request_id,label[,row]")
        parser.add_argument("--replace", action="store_true",
                            help="replace labels given before (the old ones stay in the history)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    with exit_on_error():
        from obesity.config.compose import compose

        cfg = compose(args.overrides, config_name="monitor")
        url = cfg.registry.prediction_log
        if not url:
            from obesity.errors import ConfigError

            raise ConfigError("registry.prediction_log is not set: labels live beside the "
                              "prediction log (registry=server: PREDICTION_LOG_URL)")
        out = _export(cfg, args) if exporting else _add(str(url), args)
    print(printable(out))
    return 0


def _add(url: str, args: argparse.Namespace) -> str:
    from obesity.errors import DataError
    from obesity.feedback import labels_csv
    from obesity.feedback.store import LabelsRefused, LabelStore
    from obesity.stores.locations import redact

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it as UTF-8 text: {exc}") from None
    store = LabelStore(url)
    try:
        labels, where = labels_csv.read(text)
        stored = store.add(labels, replace=args.replace, source=f"file {path.name}", where=where)
    except LabelsRefused as refused:
        raise DataError(f"{path}: nothing stored: {refused}") from None
    finally:
        store.close()
    return (f"stored {stored.stored} label(s) from {path} ({stored.replaced} replaced an earlier "
            f"one) in {redact(url)}")


def _export(cfg, args: argparse.Namespace) -> str:
    from obesity.feedback.export import export

    path = Path(args.out or cfg.monitor.labels_export)
    done = export(str(cfg.registry.prediction_log), cfg.model_name, path, dvc=not args.no_dvc)
    said = (f"wrote {done.rows} labelled row(s) of {cfg.model_name} to {done.path} "
            f"(md5 {done.md5})")
    if done.without_inputs:
        said += f"; {done.without_inputs} labelled row(s) had no inputs logged and are left out"
    said += (f"; tracked by {done.dvc_file}" if done.dvc_file else "; not tracked by DVC")
    return said + f"\ntrain on it: python -m obesity.train -m sweep=... 'data.extra=[{done.path}]'"
