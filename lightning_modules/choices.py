"""The optimizer and schedule names a config may choose from, kept free of torch imports so validation answers
instantly. Cells are looked up in :mod:`lightning_modules.cell_registry`."""

OPTIMIZER_NAMES = ("adagrad", "adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")
