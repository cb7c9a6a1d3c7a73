import sys

from wavemixer.cli import main

sys.exit(main())
