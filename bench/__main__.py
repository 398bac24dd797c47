"""`python -m bench`: the whole benchmark suite (see bench/suite.py)."""

from bench.suite import main

main()
