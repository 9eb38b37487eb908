"""Reporting: tables, figures, plots, pages, compile, regress, reproduce, compare, history, the interactive page
(explore), and each task's report part. Reads what bench.running stored; never imported by the layers below it."""
