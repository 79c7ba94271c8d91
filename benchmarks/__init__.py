"""Benchmarks of gitrecords against invenio-records and raw git (not part of the test run).

``python -m benchmarks.run --quick`` runs the suite at 1,000 records; see
docs/performance.md. ``benchmarks/fanout.py`` measures the directory layouts.
"""
