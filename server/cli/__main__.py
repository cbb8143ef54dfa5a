"""`python -m server.cli`: the `storefront` command without its console script."""

import os

from server.cli.main import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
main()
