"""``python -m analysis ARGS`` is ``lmao report ARGS``."""

import sys

from experiments.cli import app

if __name__ == "__main__":
    app(["report", *sys.argv[1:]], prog_name="python -m analysis")
