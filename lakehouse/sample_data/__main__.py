"""Allow ``python -m lakehouse.sample_data``."""

from lakehouse.sample_data.cli import main

raise SystemExit(main())
