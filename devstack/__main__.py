import sys

from devstack.server import main

sys.exit(main())
