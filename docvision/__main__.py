"""``python -m docvision`` runs the command line."""

from docvision.cli import main

main()
