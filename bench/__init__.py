"""rnn-bench's harness, in six layers, each importing only those below it (docs/layout.md): core < tasks < config <
running < reporting < cli. Entry point: ``python -m bench``."""
