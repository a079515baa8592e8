"""``python -m bpx_flows``: the command line."""

import sys

from bpx_flows.cli import main

sys.exit(main())
