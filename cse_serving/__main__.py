"""`python -m cse_serving ...` is the same as the `cse-serving` console script."""

import sys

from cse_serving.cli import main

sys.exit(main())
