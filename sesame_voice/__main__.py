"""``python -m sesame_voice``."""

import sys

from .cli import main

sys.exit(main())
