"""The results store: its schema, typed records in and out, and the read models the
dashboard and the CLI share (the compatibility matrix, fidelity runs)."""
