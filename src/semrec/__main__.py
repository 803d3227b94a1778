"""``python -m semrec``: the command-line interface, as the ``semrec`` command (useful where
the package is importable but not installed, e.g. with ``PYTHONPATH=src``)."""

from semrec.cli import app

app(prog_name="semrec")
