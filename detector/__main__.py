"""``python -m detector`` runs the examwatch CLI."""

from detector.cli import main

main()
