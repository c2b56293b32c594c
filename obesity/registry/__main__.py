"""`python -m obesity.registry ...` (see obesity.registry.cli)."""

import sys

from obesity.registry.cli import main

sys.exit(main())
