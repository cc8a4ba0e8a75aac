"""The application layer: the command line, the Python API, the composition root (config → objects),
run directories, experiments, export/batch-prediction front ends and reports.

Only this package imports :mod:`mtlrec.config` or reads a run directory, and nothing in the library
imports it.
"""
