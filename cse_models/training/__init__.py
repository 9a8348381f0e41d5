"""Training: optax + Flax NNX step, epoch loop with early stopping, orbax checkpoints."""
