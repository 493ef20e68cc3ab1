import sys

from kanphys.cli import main

sys.exit(main())
