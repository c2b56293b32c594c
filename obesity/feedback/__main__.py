"""`python -m obesity.feedback`: see obesity.feedback.cli."""

import sys

from obesity.feedback.cli import main

if __name__ == "__main__":
    sys.exit(main())
