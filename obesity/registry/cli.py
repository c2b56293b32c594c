"""`python -m obesity.registry`: inspect the MLflow Model Registry and move its aliases.

    python -m obesity.registry list
    python -m obesity.registry versions
    python -m obesity.registry compare 3 4 [data.path=cohort.csv]
    python -m obesity.registry evaluate 4 data.path=cohort.csv
    python -m obesity.registry best --metric test_f1_macro
    python -m obesity.registry promote 4 [--force]
    python -m obesity.registry alias challenger 4
    python -m obesity.registry rollback
    python -m obesity.registry history
    python -m obesity.registry register RUN_ID
    python -m obesity.registry card 4
    python -m obesity.registry keygen DIR      (signing.pem for registering, verify.pem for serving)

Which registry: the `registry` config group, e.g. `-o registry=server` or
`-o paths.outputs=/elsewhere` (any Hydra override of configs/train.yaml; `compare` and `evaluate`
also take them after their arguments: `evaluate 4 data.path=cohort.csv`).
"""

from __future__ import annotations

import argparse

from obesity.config.compose import compose, typed
from obesity.config.schemas import TrainConfig
from obesity.errors import exit_on_error, printable
from obesity.runtime import using


def main(argv: list[str] | None = None) -> int:
    with using():  # the environment set before MLflow is imported
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obesity.registry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="Hydra override of configs/train.yaml (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered models with their aliases")
    sub.add_parser("versions", help="versions: aliases, metrics, data md5, created")
    p = sub.add_parser("compare", help="two versions side by side, label agreement and the "
                       "paired bootstrap on the test split (or on data.path=FILE)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p = sub.add_parser("evaluate", help="score a version on a labelled file (data.path=FILE), "
                       "recorded in MLflow and on the version")
    p.add_argument("version")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    p = sub.add_parser("best", help="the version with the highest value of a metric")
    p.add_argument("--metric", default=None, help="default: the promotion metric")
    p = sub.add_parser("promote", help="make a version champion (guarded unless --force)")
    p.add_argument("version")
    p.add_argument("--force", action="store_true",
                   help="skip the better-than-champion check (never the approval check)")
    p = sub.add_parser("alias", help="point any alias at a version (recorded)")
    p.add_argument("name")
    p.add_argument("version")
    sub.add_parser("rollback", help="champion back to the previous champion")
    sub.add_parser("history", help="every recorded alias move")
    p = sub.add_parser("register", help="refit a finished run's config, score it once on the "
                       "test split, register it and promote it (guarded)")
    p.add_argument("run_id")
    p = sub.add_parser("card", help="a version's model card (markdown)")
    p.add_argument("version")
    p = sub.add_parser("keygen", help="a new Ed25519 key pair for signing version manifests")
    p.add_argument("folder")
    args = parser.parse_args(argv)
    with exit_on_error():  # a bad override, an unknown version, an unreachable server
        cfg = typed(compose([*args.override, *getattr(args, "overrides", [])]), TrainConfig)
        from obesity.registry.commands import COMMANDS
        from obesity.stores.tracking import store_errors

        with store_errors(cfg.registry):
            out = COMMANDS[args.command](cfg, args)
    print(printable(out))
    return 0

