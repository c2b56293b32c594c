"""`python -m obesity.feedback`: see obesity.feedback.cli."""

import sys

from obesity.feedback.cli import main
from obesity.runtime import command_line_process

if __name__ == "__main__":
    command_line_process()
    sys.exit(main())
