"""`python -m cse_demo` is the same as the `cse-demo` console script."""

import sys

from cse_demo.cli import main

sys.exit(main())
