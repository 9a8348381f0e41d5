"""A fitted ensemble exported as ONE graph and proved: compose the members' graphs with the combiners,
check the composed graph against the ensemble computed from the members run alone, and describe the
result as an `ExportedModel` (the `onnx_ensemble` asset's value). onnx is imported when it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cse_models.config import DataConfig
from cse_models.ensembles.fitted import FittedEnsemble
from cse_models.export.exported import ExportedModel


def export_ensemble(
    fitted: FittedEnsemble,
    member_paths: Mapping[str, str | Path],
    path: Path,
    inputs: Mapping[str, np.ndarray],
    data_cfg: DataConfig,
) -> tuple[ExportedModel, tuple[str, ...]]:
    """(the composed, parity-checked graph at `path`, its output names). `inputs`: held-back windows as
    graph inputs; ExportParityError when the composed graph disagrees with the ensemble."""
    from cse_models.ensembles.compose import check_composed, compose_ensemble
    from cse_models.export.onnx import op_types

    composed = compose_ensemble(fitted, member_paths, path)
    parity = check_composed(fitted, composed, member_paths, inputs)
    exported = ExportedModel(
        composed.path, fitted.name, data_cfg.task, data_cfg.seq_len, sorted(op_types(path)), parity.as_dict()
    )
    return exported, tuple(composed.outputs)
