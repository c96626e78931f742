import sys

from llmsoak.cli import main

sys.exit(main())
