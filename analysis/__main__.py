"""``python -m analysis ARGS`` is ``lmao report ARGS`` (the same command, without the rest of ``lmao``)."""

from experiments.common.cli_base import Command, new_app

from .cli import report

app = new_app(help="Comparison tables and plots from raw trial results.")
app.command(cls=Command)(report)

if __name__ == "__main__":
    app(prog_name="python -m analysis")
