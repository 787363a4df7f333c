"""Benchmarks at scale: suites, the results store, executors, statistics, plots and reports.

A *suite* (YAML) names tasks, checkpoints, strategies, budgets, widths, instances and seeds; its
cells (the cross product) run through `ceiling.search.solve` and land one row each in an SQLite
store that a sweep resumes from. `stats` turns the stored rows into normalised scores, IQM with
stratified bootstrap confidence intervals and gains over zero-shot; `report` draws them.
"""
