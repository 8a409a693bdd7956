"""``python -m sesame_voice``."""

import sys

from sesame_voice.app.cli import main

sys.exit(main())
