"""`python -m obesity COMMAND ARGS...`: every entrypoint under one name (the container image's).

    python -m obesity train -m sweep=hgb      # = python -m obesity.train -m sweep=hgb
    python -m obesity serve registry=server   # = python -m obesity.serve registry=server
    python -m obesity monitor | registry ... | feedback ... | predict IN OUT
"""

from __future__ import annotations

import runpy
import sys

COMMANDS = {"train": "obesity.train", "serve": "obesity.serve", "monitor": "obesity.monitor",
            "registry": "obesity.registry", "feedback": "obesity.feedback",
            "predict": "obesity.predict"}
USAGE = f"usage: python -m obesity {{{','.join(COMMANDS)}}} [ARGS...]"


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        print(f"{USAGE}\n{__doc__}", file=sys.stderr)
        raise SystemExit(0 if argv[:1] in (["-h"], ["--help"]) else 2)
    module = COMMANDS[argv[0]]
    sys.argv = [f"python -m {module}", *argv[1:]]  # what the command sees, as if run directly
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
