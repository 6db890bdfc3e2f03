import sys

from xgraph.cli import main

sys.exit(main())
