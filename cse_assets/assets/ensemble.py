"""The ensemble per symbol, built by a factory from the model specs when there are two or more:
`ensemble_weights` (the best-scoring ensemble method fit on the published members' validation forecasts)
and `onnx_ensemble` (every member graph and the combiners composed into ONE graph, parity-checked)."""

# No `from __future__ import annotations`: Dagster inspects the context/resource annotations at import.
from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from cse_assets.assets import DomainDefinitions
from cse_assets.catalog import ENSEMBLE, TRAINING_POOL
from cse_assets.failures import library_errors_as_failure
from cse_assets.partitions import symbols
from cse_assets.resources import CseHomeResource, DataSettings
from cse_models.datasets.graph_inputs import graph_inputs
from cse_models.datasets.prepared import PreparedSeries
from cse_models.ensembles import EnsembleConfig, FittedEnsemble, default_ensembles
from cse_models.ensembles.exported import export_ensemble
from cse_models.evaluation import Leaderboards
from cse_models.export.exported import ExportedModel
from cse_models.features.scaling import FittedScaler
from cse_models.specs import ModelSpec


def _members_in(specs: Sequence[ModelSpec]) -> dict[str, AssetIn]:
    return {f"onnx_{spec.name}": AssetIn(f"onnx_{spec.name}", dagster_type=ExportedModel) for spec in specs}


def weights_table(fitted: FittedEnsemble, boards: Leaderboards) -> MetadataValue:
    """Per member (and the ensemble): its weight and its walk-forward skill on each head."""
    weights = fitted.weights()
    heads = boards.heads
    columns = [
        TableColumn("forecaster", "string"),
        *(TableColumn(f"weight/{head}", "float") for head in weights),
        *(
            TableColumn(f"skill/{head}", "float", description=f"walk-forward vs {boards[head].reference}")
            for head in heads
        ),
    ]
    records = [
        TableRecord(
            {
                "forecaster": name,
                **{f"weight/{head}": round(w.get(name, float("nan")), 6) for head, w in weights.items()},
                **{f"skill/{head}": round(boards[head].row(name).skill, 6) for head in heads},
            }
        )
        for name in (*fitted.members, fitted.name)
    ]
    return MetadataValue.table(records, schema=TableSchema(columns))


def build_ensemble(specs: Sequence[ModelSpec]) -> DomainDefinitions:
    """`ensemble_weights` and `onnx_ensemble` over `specs` (nothing for fewer than two)."""
    ensembles = default_ensembles(tuple(spec.name for spec in specs))
    if not ensembles:
        return DomainDefinitions(assets=())
    return DomainDefinitions(assets=(ensemble_weights_asset(specs, ensembles), onnx_ensemble_asset(specs)))


def ensemble_weights_asset(specs: Sequence[ModelSpec], ensembles: Sequence[EnsembleConfig]) -> AssetsDefinition:
    @asset(
        partitions_def=symbols,
        kinds={"optax"},
        group_name=ENSEMBLE.group,
        owners=ENSEMBLE.owners,
        code_version=ENSEMBLE.code_version,
        pool=TRAINING_POOL,  # optax fits the weights and the meta model: a JAX step
        ins={
            "evaluation": AssetIn("evaluation", dagster_type=Leaderboards),
            "datasets": AssetIn("datasets", dagster_type=dict),
            "scaler": AssetIn("scaler", dagster_type=FittedScaler),
            **_members_in(specs),
        },
    )
    def ensemble_weights(context: AssetExecutionContext, data_settings: DataSettings, **inputs) -> FittedEnsemble:
        """The ensemble method (weighted, stacking or voting) with the best walk-forward price skill, fit on
        what the published members' ONNX graphs forecast for the validation windows (never their training
        rows): its weights or meta model per head and its conformal interval factor."""
        from cse_models.publication.ensemble_choice import choose_ensemble, fit_on_graphs

        boards: Leaderboards = inputs["evaluation"]
        paths = {spec.name: inputs[f"onnx_{spec.name}"].path for spec in specs}
        with library_errors_as_failure():
            chosen = choose_ensemble(boards, ensembles)
            prepared = PreparedSeries(inputs["datasets"], data_settings.data_config(), inputs["scaler"])
            fitted = fit_on_graphs(chosen, paths, prepared)
        context.add_output_metadata(
            {
                "method": fitted.method,
                "members": list(fitted.members),
                "weights": weights_table(fitted, boards),
                "interval_scale": fitted.interval_scale,
                "fit": MetadataValue.json(fitted.info),
                **{f"skill/{head}": boards[head].row(fitted.name).skill for head in boards.heads},
            }
        )
        return fitted

    return ensemble_weights


def onnx_ensemble_asset(specs: Sequence[ModelSpec]) -> AssetsDefinition:
    @asset(
        partitions_def=symbols,
        kinds={"onnx"},
        group_name=ENSEMBLE.group,
        owners=ENSEMBLE.owners,
        code_version=ENSEMBLE.code_version,
        ins={
            "ensemble_weights": AssetIn("ensemble_weights", dagster_type=FittedEnsemble),
            "datasets": AssetIn("datasets", dagster_type=dict),
            **_members_in(specs),
        },
    )
    def onnx_ensemble(
        context: AssetExecutionContext, data_settings: DataSettings, cse_home: CseHomeResource, **inputs
    ) -> ExportedModel:
        """Every member graph and the ensemble's combiners in ONE ONNX graph: one session.run per request
        returns the ensemble's card and each member's (`<member>/close`, …); checked against the ensemble
        computed in Python from the members run alone (rtol 1e-3, atol 1e-5)."""
        fitted: FittedEnsemble = inputs["ensemble_weights"]
        config = data_settings.data_config()
        paths = {spec.name: inputs[f"onnx_{spec.name}"].path for spec in specs}
        path = cse_home.root / "onnx" / "ensemble" / context.partition_key / "model.onnx"
        with library_errors_as_failure():
            exported, outputs = export_ensemble(
                fitted, paths, path, graph_inputs(inputs["datasets"]["test"], config), config
            )
        context.add_output_metadata(
            {
                "path": MetadataValue.path(exported.path),
                "outputs": list(outputs),
                **{f"parity/{k}": v for k, v in exported.parity.items() if k != "batches"},
            }
        )
        return exported

    return onnx_ensemble
