"""Training-at-scale options in one process: precision, remat, NaN handling, corrupt checkpoints,
augmentation, schedules, adaptive batch size, TensorBoard logs, config validation."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from cse_models.errors import ConfigError, DataError, StoreError
from cse_models.models import build_model
from cse_models.models.lstm import LSTMConfig
from cse_models.training.augment import augment_windows, augmentation_key
from cse_models.training.batches import probe_batch_size
from cse_models.training.checkpoint import BestCheckpoints, TrainStateCheckpoints, restore_params
from cse_models.training.config import TrainingConfig, budget
from cse_models.training.loop import fit
from cse_models.training.schedules import PlateauRule, build_optimizer, current_learning_rate, learning_rate_schedule
from cse_models.training.step import StepOptions, batch_loss, gather_windows, reseed_streams


def _lstm(hidden: int = 8, seed: int = 0) -> nnx.Module:
    return build_model("lstm_regressor", LSTMConfig(hidden=hidden), rngs=nnx.Rngs(seed))


def _fp32_params(model):
    return jax.tree.leaves(nnx.state(model, nnx.Param))


def test_bf16_compute_trains_and_keeps_fp32_parameters(prepared, data_cfg):
    _, datasets = prepared
    model = _lstm()
    cfg = budget("demo", max_epochs=3, batch_size=32, precision="bf16")
    result = fit(model, datasets["train"], datasets["val"], data_cfg, cfg)
    losses = [e.train_loss for e in result.history]
    assert losses[-1] < losses[0]
    assert all(leaf.dtype == jnp.float32 for leaf in _fp32_params(model))


def test_remat_gives_the_same_gradients_as_storing_activations(prepared, data_cfg):
    _, datasets = prepared
    train = datasets["train"]
    model = _lstm(16)
    model.train()  # dropout on: both passes must draw the same mask
    reseed_streams(model, jax.random.key(3))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    windows = gather_windows(jnp.asarray(train.x), jnp.arange(48), data_cfg.seq_len)
    targets, weights = jnp.asarray(train.y[:48]), jnp.ones(48)

    def grads(remat: bool):
        def loss(p):
            return batch_loss(p, graphdef, rest, windows, targets, weights, "regression", StepOptions(remat=remat))[0]

        return jax.jit(jax.grad(loss))(params)

    plain, rematerialised = grads(False), grads(True)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(rematerialised), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(plain))


def test_nan_loss_raises_data_error_naming_the_step_and_keeps_the_last_good_checkpoint(prepared, data_cfg, tmp_path):
    _, datasets = prepared
    train = datasets["train"]
    y = train.y.astype(np.float32).copy()
    y[5 * 32 + 3] = np.nan  # the window that starts there is in step 5 when batches run in order
    poisoned = dataclasses.replace(train, y=y)
    cfg = budget("demo", max_epochs=2, batch_size=32, shuffle=False, checkpoint_every_steps=2)
    with pytest.raises(DataError, match=r"at step 5 \(epoch 0\)"):
        fit(_lstm(), poisoned, datasets["val"], data_cfg, cfg, state_dir=tmp_path / "state")
    store = TrainStateCheckpoints(tmp_path / "state")
    try:
        assert store.latest_step() == 4
        model = _lstm()
        tree = {"model": nnx.state(model, nnx.Param)}
        store.manager.wait_until_finished()
        restored = store.manager.restore(4, args=_partial_restore(tree))
        assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(restored.state["model"]))
    finally:
        store.close()


def _partial_restore(tree):
    import orbax.checkpoint as ocp

    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
    return ocp.args.Composite(state=ocp.args.PyTreeRestore(target, partial_restore=True))


def _garble(directory):
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:
        path.write_bytes(b"\x00garbage\xff" * 3)


def test_corrupt_training_state_raises_store_error_naming_the_directory(prepared, data_cfg, tmp_path):
    _, datasets = prepared
    cfg = budget("demo", max_epochs=1, batch_size=32)
    state = tmp_path / "state"
    fit(_lstm(), datasets["train"], datasets["val"], data_cfg, cfg, state_dir=state)
    _garble(state)
    with pytest.raises(StoreError, match=str(state)):
        fit(_lstm(), datasets["train"], datasets["val"], data_cfg, cfg, state_dir=state)


def test_corrupt_best_checkpoint_raises_store_error(prepared, data_cfg, tmp_path):
    _, datasets = prepared
    checkpoints = BestCheckpoints(tmp_path / "checkpoints")
    try:
        cfg = budget("tiny", batch_size=32)
        fit(_lstm(), datasets["train"], datasets["val"], data_cfg, cfg, checkpoints=checkpoints)
    finally:
        checkpoints.close()
    for step_dir in (tmp_path / "checkpoints").iterdir():
        if step_dir.is_dir():
            _garble(step_dir)
    with pytest.raises(StoreError, match="corrupt"):
        checkpoints = BestCheckpoints(tmp_path / "checkpoints")
        try:
            restore_params(checkpoints.manager, 0, _lstm())
        finally:
            checkpoints.close()


def test_augmentation_is_reproducible_for_a_seed_and_step():
    windows = jax.random.normal(jax.random.key(0), (8, 12, 9))
    augment = jax.jit(
        lambda seed, step: augment_windows(
            windows, augmentation_key(seed, step), jitter_std=0.05, scaling_std=0.1, window_slice=0.75
        )
    )
    first = augment(3, 7)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(augment(3, 7)))
    assert first.shape == windows.shape
    assert not np.allclose(first, augment(3, 8))
    assert not np.allclose(first, augment(4, 7))
    np.testing.assert_array_equal(np.asarray(augment_windows(windows, augmentation_key(3, 7))), np.asarray(windows))


def test_window_slicing_stretches_a_sub_window_to_the_full_length():
    ramp = jnp.broadcast_to(jnp.arange(12.0)[None, :, None], (4, 12, 1))
    sliced = np.asarray(augment_windows(ramp, augmentation_key(0, 0), window_slice=0.5))
    steps = np.diff(sliced[:, :, 0], axis=1)
    np.testing.assert_allclose(steps, 5.0 / 11.0, rtol=1e-5)  # 6 kept rows spread over 12
    assert (sliced >= 0).all() and (sliced <= 11).all()


def test_schedules_warm_up_decay_and_reduce_on_plateau():
    warm = learning_rate_schedule(TrainingConfig(lr_schedule="warmup_cosine", warmup_steps=10, min_lr_ratio=0.1), 100)
    assert float(warm(0)) == 0.0
    assert float(warm(10)) == pytest.approx(1e-4)
    assert float(warm(100)) == pytest.approx(1e-5)
    cosine = learning_rate_schedule(TrainingConfig(lr_schedule="cosine"), 50)
    assert float(cosine(0)) == pytest.approx(1e-4) and float(cosine(50)) == pytest.approx(0.0, abs=1e-12)
    cfg = TrainingConfig(lr_schedule="plateau", plateau_patience=1, plateau_factor=0.5, grad_clip_norm=1.0)
    optimizer = nnx.Optimizer(_lstm(), build_optimizer(cfg, 10), wrt=nnx.Param)
    rule = PlateauRule(cfg.plateau_factor, cfg.plateau_patience)
    for val_loss in (1.0, 1.1, 1.2):
        rule.observe(optimizer, val_loss)
    assert current_learning_rate(optimizer) == pytest.approx(5e-5)


def test_adaptive_batch_size_is_the_largest_power_of_two_under_the_cap(prepared, data_cfg):
    _, datasets = prepared
    cfg = budget("demo", auto_batch_cap=100)
    size = probe_batch_size(_lstm(), datasets["train"], data_cfg, cfg, cfg.auto_batch_cap)
    assert size == 64  # nothing runs out of memory on the CPU


def test_fit_writes_tensorboard_events_with_weight_decay_and_clipping(prepared, data_cfg, tmp_path):
    _, datasets = prepared
    cfg = budget("tiny", weight_decay=1e-2, grad_clip_norm=0.5, lr_schedule="cosine", jitter_std=0.01)
    result = fit(_lstm(), datasets["train"], datasets["val"], data_cfg, cfg, log_dir=tmp_path / "tb")
    assert np.isfinite(result.history[0].train_loss)
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr_schedule", "linear"),
        ("precision", "fp16"),
        ("grad_clip_norm", 0.0),
        ("weight_decay", -1.0),
        ("window_slice", 0.0),
        ("auto_batch_cap", 0),
        ("checkpoint_every_steps", 0),
        ("keep_best", 0),
    ],
)
def test_config_rejects_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainingConfig(**{field: value})
