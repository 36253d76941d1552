"""Running a command over its sources: the engine, where records go, progress, and exit statuses.

``batch.execute`` is what every command calls once it has parsed its options: it expands the sources,
locks and resumes ``--output``, starts the run's tools and model, drives ``engine.run`` and returns the
ExitStatus. docs/architecture.md shows how the pieces fit.
"""
