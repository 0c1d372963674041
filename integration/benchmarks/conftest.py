"""Benchmarks compare single-threaded runs: pin BLAS to one thread before numpy is imported."""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
