"""Training: optax + Flax NNX step, data-parallel sharding, schedules, augmentation, mixed precision,
resumable orbax checkpoints and TensorBoard logs."""
