import sys

from pytools.cli import main

sys.exit(main())
