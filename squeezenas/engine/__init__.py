"""Training and evaluation machinery: loops, metrics, checkpoints."""
