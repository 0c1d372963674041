"""Models made in code: seeded random weights for model-zoo topologies (weights.py) and
transformers with seeded weights (transformers.py)."""
