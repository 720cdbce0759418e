"""``python -m shapeot.ui``: the same as ``shapeot-gui``."""
import sys

from .app import main

sys.exit(main())
