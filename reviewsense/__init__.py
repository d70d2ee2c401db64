"""ReviewSense operator tooling: the ``reviewsense`` command and the local cloud.

Runs on workstations and CI, never inside a Lambda; it may use pandas, DuckDB and the training code.
"""
