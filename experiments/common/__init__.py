"""What every package shares and nothing else: the one bad-input error (``errors``: ``InputError``, read with
file and line), progress and log lines (``progress``), and the typer app style with its one-line error idiom
(``cli_base``), used by experiments.cli, analysis and the Polyaxon tools alike.

May import: nothing of ours.
"""
