"""`python -m leergang_ops` is the `leergang-ops` command."""

import sys

from leergang_ops.cli import main

sys.exit(main())
