"""The copy-memory task as a plug-in package: everything task-specific in this one folder.

``data`` generates the sequences and holds the memoryless baseline, ``module`` is the LightningModule, ``task`` the
specification the harness validates and runs (entry point ``rnn_bench.tasks``), ``report`` its report part
(entry point ``rnn_bench.reports``). See README.md.
"""
