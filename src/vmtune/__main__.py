import sys

from vmtune.cli import main

sys.exit(main())
