"""``python -m polars_metrics.cli``: the ``polars-metrics`` command."""
import sys

from polars_metrics.cli import main

sys.exit(main())
