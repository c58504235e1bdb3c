"""Drivers: what the entry points run (pretraining offline or online, the continual task loop, linear and kNN
evaluation). Nothing below this layer imports it."""
