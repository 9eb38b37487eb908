"""The names a config may choose from, kept free of torch imports so validation answers instantly."""

CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
OPTIMIZER_NAMES = ("adagrad", "adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")
