"""Loading a published version into a `LoadedModel`: verify its sha256s, check its manifest against the
feature set and the task's decoder, choose the encoding that serves on this CPU (`cse_serving.variant_check`),
build its ORT sessions, check their inputs and outputs against the manifest and prove they run.

Everything that can fail happens here, before the registry swaps anything in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cse_models.data.schema import interval_ms
from cse_models.errors import ConfigError, StoreError, UnknownNameError
from cse_models.features.sets import get_feature_set
from cse_models.heads.layout import INPUT_NAME, LAST_CLOSE_INPUT, OUTPUT_NAMES, input_names
from cse_models.store import MODEL_FILE, Manifest, ModelStore
from cse_serving.answers import DECODERS
from cse_serving.loaded_model import LoadedModel, Window
from cse_serving.session_cache import SessionCache
from cse_serving.settings import Settings
from cse_serving.variant_check import OpenSession, served_encoding


def load_model(
    store: ModelStore,
    symbol: str,
    interval: str,
    version: str,
    settings: Settings,
    sessions: SessionCache | None = None,
) -> LoadedModel:
    """Verify a version's sha256s, take its session(s) from `sessions` (a graph another loaded version
    runs is not built again; by default a cache of this load's own) and prove they run; raise StoreError
    otherwise.

    Everything that can fail happens here, before the registry swaps anything in."""
    manifest, root = store.verified(symbol, interval, version)
    open_graph = _graph_opener(SessionCache(settings) if sessions is None else sessions, manifest, root)
    where = f"{symbol} {interval} {version}"
    if manifest.task not in DECODERS:
        raise StoreError(f"{where}: task {manifest.task!r} is not one of {sorted(DECODERS)}")
    try:
        feature_set = get_feature_set(manifest.feature_set)
        step = interval_ms(manifest.interval)
    except (UnknownNameError, ConfigError) as exc:
        raise StoreError(f"{where}: {exc}") from exc
    if tuple(manifest.feature_names) != feature_set.feature_names:
        raise StoreError(
            f"{where}: manifest features {manifest.feature_names} differ from "
            f"feature set {feature_set.name!r} {list(feature_set.feature_names)}"
        )
    try:
        decoder = DECODERS[manifest.task](manifest)
    except StoreError as exc:
        raise StoreError(f"{where}: {exc}") from exc
    inputs = _input_roles(manifest, root / MODEL_FILE)
    output_names = _output_names(manifest, root / MODEL_FILE)
    served = served_encoding(manifest, root, settings, inputs, output_names, open_graph)
    _check_io(served.session, manifest, inputs, output_names, root / served.file)
    members = {
        Path(rel).stem: open_graph(rel)
        for rel in sorted(manifest.files)
        if rel.startswith("members/") and rel.endswith(".onnx")
    }
    for name, member in members.items():
        _check_io(member, manifest, inputs, output_names, root / f"members/{name}.onnx")
    model = LoadedModel(
        manifest=manifest,
        session=served.session,
        feature_set=feature_set,
        inputs=inputs,
        output_names=output_names,
        decoder=decoder,
        interval_ms=step,
        loaded_at=datetime.now(UTC),
        members=members,
        model_file=served.file,
        encoding=served.encoding,
        encoding_reason=served.reason,
    )
    _smoke_test(model)
    return model


def _graph_opener(sessions: SessionCache, manifest: Manifest, root: Path) -> OpenSession:
    """A verified file of the version (relative path) → its session from `sessions`, keyed by the sha256
    the manifest lists for it: byte-identical graphs of other series or versions share one session."""
    return lambda rel: sessions.session(manifest.files[rel], root / rel)


def _input_roles(manifest: Manifest, path: Path) -> dict[str, str]:
    """Input role → graph input name: the manifest's input specs in the contract's order (`input_names`);
    a manifest without input specs means the contract's names."""
    roles = input_names(manifest.task)
    names = [spec.name for spec in manifest.inputs] or list(roles)
    if len(names) != len(roles):
        raise StoreError(f"{path}: a {manifest.task} model takes inputs {list(roles)}; the manifest lists {names}")
    return dict(zip(roles, names, strict=True))


def _output_names(manifest: Manifest, path: Path) -> tuple[str, ...]:
    """The graph outputs to run: the manifest's `outputs` (the contract), which must include what the
    task's decoder reads (`OUTPUT_NAMES[task]`). A manifest may list more (a new head, ensemble members'
    outputs): they are run and passed to the decoder, which reads what it knows, so a new head needs no
    serving change. A manifest without output specs means the task's contract names."""
    names = tuple(spec.name for spec in manifest.outputs) or OUTPUT_NAMES[manifest.task]
    missing = [name for name in OUTPUT_NAMES[manifest.task] if name not in names]
    if missing:
        raise StoreError(f"{path}: a {manifest.task} model needs output(s) {missing}; the manifest lists {list(names)}")
    return names


def _expected_shapes(manifest: Manifest) -> dict[str, list[int | None]]:
    """Input role → shape with None for the batch axis."""
    return {INPUT_NAME: [None, manifest.seq_len, len(manifest.feature_names)], LAST_CLOSE_INPUT: [None, 1]}


def _check_io(
    session: ort.InferenceSession,
    manifest: Manifest,
    roles: dict[str, str],
    output_names: tuple[str, ...],
    path: Path,
) -> None:
    """The graph has every input of the task, with the manifest's window shape, and every listed output."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    expected_shapes = _expected_shapes(manifest)
    missing = [name for name in roles.values() if name not in inputs]
    if missing:
        raise StoreError(f"{path}: no input {missing[0]!r}; it has {sorted(inputs)}")
    for role, name in roles.items():
        shape, expected = inputs[name].shape, expected_shapes[role]
        if len(shape) != len(expected) or any(
            isinstance(d, int) and e is not None and d != e for d, e in zip(shape, expected, strict=True)
        ):
            shown = ", ".join(["batch", *(str(e) for e in expected[1:])])
            raise StoreError(f"{path}: input {name!r} has shape {shape}, expected [{shown}]")
    for name in output_names:
        if name not in outputs:
            raise StoreError(f"{path}: the manifest lists output {name!r}; the graph has {sorted(outputs)}")


def _smoke_test(model: LoadedModel) -> None:
    """Run a zero window (last close 1.0) through every session: a graph that loads but cannot run fails
    here, not live."""
    manifest = model.manifest
    probe = Window(np.zeros((manifest.seq_len, len(manifest.feature_names)), dtype=np.float32), 1.0, 0)
    feeds = model.feeds([probe])
    # The manifest's output shapes with the batch axis at 1 (the contract); the task's widths without them.
    shapes = {spec.name: [1, *spec.shape[1:]] for spec in manifest.outputs}
    for name, session in [("model", model.session), *model.members.items()]:
        try:
            outputs = model.run(feeds, session)
        except Exception as exc:  # onnxruntime's runtime errors are untyped
            raise StoreError(
                f"{manifest.symbol} {manifest.interval} {manifest.version} {name}: run fails: {exc}"
            ) from exc
        for output, value in outputs.items():
            expected = shapes.get(output) or [1, len(manifest.class_names) if output == "probabilities" else 1]
            if len(value.shape) != len(expected) or any(
                isinstance(e, int) and d != e for d, e in zip(value.shape, expected, strict=True)
            ):
                raise StoreError(
                    f"{manifest.symbol} {manifest.interval} {manifest.version} {name}: output {output!r} has "
                    f"shape {list(value.shape)} for one window, expected {expected}"
                )
