"""Maintainers' evals and benchmarks: gold sets, metrics, reports with plots, the regression gate, BEIR, bench.

Light on import: `eval.commands` only parses arguments; the model and the index load when a command runs.
"""
