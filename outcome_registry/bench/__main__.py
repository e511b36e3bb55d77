"""`python -m outcome_registry.bench`: the benchmark's command line (and its child-process tasks)."""

import sys

from outcome_registry.bench import main

sys.exit(main())
