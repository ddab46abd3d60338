"""``python -m occupant.cli`` runs the ``occupant`` command."""

from occupant.cli.main import app

app(prog_name="occupant")
