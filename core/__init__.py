"""What every part of leaksentinel shares: settings, the database, hashing, search, evidence.

numpy is only used for sorting and searching (no BLAS), but its OpenBLAS starts a worker thread per core
when numpy is imported, which spins on the other cores for ~0.05-0.1 CPU-s at every process start (a
crawl, a command, a worker) and counts as its CPU: one thread is asked for here, before any module of
leaksentinel imports numpy (a value the user set stays).
"""

import os

for _blas_threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_blas_threads, "1")
