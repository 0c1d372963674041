"""The results database's schema history (Alembic): env.py and one file per revision in
versions/. `stackci.results.migrate` upgrades every store to the single head when it opens;
docs/design.md ("The results store's schema") says how to add a revision."""
