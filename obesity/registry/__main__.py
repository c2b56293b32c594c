"""`python -m obesity.registry ...` (see obesity.registry.cli)."""

import sys

from obesity.registry.cli import main
from obesity.runtime import command_line_process

if __name__ == "__main__":
    command_line_process()
    sys.exit(main())
