"""``python -m lmao ARGS`` is ``lmao ARGS``."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="lmao")
