"""Example plug-in cells torch does not ship, each one file, named by dotted path in a suite or on the command
line: ``examples.mgu:mgu`` (Zhou et al. 2016) and ``examples.min_gru:min_gru`` (Feng et al. 2024). The suite
``examples/plugin_cells.yaml`` runs them beside LSTM and GRU."""
