from transit_window.cli.main import app

app()
