"""Footprint's benchmarks: ``python -m bench [worker|api|live|stores] [--size tiny|small|full]``.

Every benchmark starts the real servers it needs (``footprint.stack``), measures a *ratio* or a
figure within one run (the machines are shared and noisy), prints progress, and ends with exactly
one ``RESULT name=value ...`` line. ``make bench`` runs them all at full size and rewrites
``BENCHMARKS.md`` (with the hand-written notes of ``bench/notes/``) and the charts under
``bench/charts/``; ``--size tiny`` runs each in seconds and writes its report to a temporary
directory, for a smoke test.
"""

__all__: list[str] = []
