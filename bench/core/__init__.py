"""Bottom layer: setting fields and their validation, safe names, statistics. Imports nothing else of bench."""
