"""`python -m faults`: run the fault suite; exit status 1 if any fault lost data."""

import sys

from faults.suite import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
