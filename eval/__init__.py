"""Evaluation harness that measures every AI part of OpsSeer on public data (`opsseer eval`).

TODO: the evaluation suites and the `opsseer eval` command are not implemented yet.
"""
