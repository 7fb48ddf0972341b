"""``python -m gcverify ...``: the gcverify command (:mod:`gcverify.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
