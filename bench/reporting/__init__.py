"""Reporting: tables, figures, plots, pages, compile, regress, reproduce, and each task's report part. Reads what
bench.running stored; never imported by the layers below it."""
