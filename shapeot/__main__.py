"""``python -m shapeot``: the command line (same as the ``shapeot`` console script)."""
from shapeot.cli import main

raise SystemExit(main())
