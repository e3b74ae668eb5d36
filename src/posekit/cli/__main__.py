"""``python -m posekit.cli``."""

import sys

from posekit.cli import main

sys.exit(main())
