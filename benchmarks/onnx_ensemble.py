"""bench_onnx's ensemble section (issue 13): the five-member ensemble — LSTM, GRU, CNN1D, Transformer and
LightGBM on the forecast task — composed into ONE graph, timed as serving runs it (one `session.run` per
request) beside each member's own graph called separately, at batch 1 and 64.

The networks are built at the preset the graph trains (`--ensemble-preset`, `demo` by default; `default`
is the seed's sizes) with random weights — latency does not depend on training — and LightGBM is fit on
the bundled sample (its tree count decides its latency). The ensemble is the weighted kind, fit on the
members' validation forecasts exactly as the `ensemble_weights` asset fits it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _common import percentile  # type: ignore[import-not-found]
from ort_timing import SETTINGS, session, time_calls  # type: ignore[import-not-found]

SEQ_LEN = 24
NETWORKS = {
    "lstm": "lstm_regressor",
    "gru": "financial_gru",
    "cnn1d": "financial_cnn1d",
    "transformer": "transformer_encoder",
}
CLASSICAL = {"lightgbm": "lightgbm"}
ONE_GRAPH_GOAL_US = 1000.0


def build_ensemble(symbol: str, preset: str, out_dir: Path) -> tuple[dict[str, str], str, dict[str, np.ndarray]]:
    """→ (member name → ONNX path, the composed graph's path, 64 held-back graph inputs)."""
    from flax import nnx

    from cse_models.config import DataConfig
    from cse_models.data.clean import clean_klines
    from cse_models.data.file_sources import SAMPLE_INTERVAL, SampleSource
    from cse_models.datasets.graph_inputs import graph_inputs
    from cse_models.datasets.prepared import PreparedSeries
    from cse_models.datasets.segments import build_datasets, compute_features, fit_feature_scaler
    from cse_models.ensembles import EnsembleConfig
    from cse_models.ensembles.compose import check_composed, compose_ensemble
    from cse_models.export.onnx import export_onnx
    from cse_models.heads import HeadCalibration
    from cse_models.members import member_kind
    from cse_models.models import build_model
    from cse_models.publication.ensemble_choice import fit_on_graphs
    from cse_models.specs import ModelSpec
    from cse_models.training.config import budget
    from cse_models.training.run import model_config_for

    klines, _ = clean_klines(SampleSource().fetch(symbol, SAMPLE_INTERVAL, None, None), SAMPLE_INTERVAL)
    cfg = DataConfig(seq_len=SEQ_LEN)
    features = compute_features(klines, cfg.feature_set)
    scaler = fit_feature_scaler(features, cfg)
    datasets = build_datasets(features, scaler, cfg)
    inputs = graph_inputs(datasets["test"], cfg, limit=64)
    paths: dict[str, str] = {}
    calibration = HeadCalibration(shrink=0.5, direction_weight=0.5)
    for seed, (name, arch) in enumerate(NETWORKS.items()):
        model = build_model(arch, model_config_for(arch, cfg, len(scaler.feature_names), preset), rngs=nnx.Rngs(seed))
        paths[name] = str(export_onnx(model, scaler, cfg, out_dir / f"member_{name}.onnx", calibration))
    for name, arch in CLASSICAL.items():
        kind, spec = member_kind(arch), ModelSpec(name, arch, preset=preset)
        trained = kind.train(spec, PreparedSeries(datasets, cfg, scaler), budget("demo"), out_dir / f"member_{name}")
        paths[name] = kind.export(trained, scaler, cfg, out_dir / f"member_{name}.onnx", inputs).path
    fitted = fit_on_graphs(
        EnsembleConfig("ensemble_weighted", tuple(paths), "weighted"), paths, PreparedSeries(datasets, cfg, scaler)
    )
    composed = compose_ensemble(fitted, paths, out_dir / "ensemble.onnx")
    check_composed(fitted, composed, paths, inputs)
    return paths, composed.path, inputs


def ensemble_section(symbol: str, preset: str, out_dir: Path, batches: dict[int, tuple[int, int]]) -> dict:
    """p50/p99 µs of the ONE graph and of each member alone per session setting and batch; the sum of the
    members' separate p50s; the goal verdicts."""
    paths, one_graph, inputs = build_ensemble(symbol, preset, out_dir)
    graphs = {"ensemble (one run)": one_graph, **{f"member:{n}": p for n, p in paths.items()}}
    stats: dict[str, dict] = {}
    for setting in SETTINGS:
        for graph, path in graphs.items():
            sess = session(path, setting)
            for batch, (n, warmup) in batches.items():
                feed = {name: np.ascontiguousarray(x[:batch]) for name, x in inputs.items()}
                values = time_calls(sess, feed, n, warmup)
                stats.setdefault(graph, {}).setdefault(setting, {})[f"b{batch}"] = {
                    "p50_us": percentile(values, 50),
                    "p99_us": percentile(values, 99),
                }
    summary = {}
    for setting in SETTINGS:
        for batch in batches:
            key = f"b{batch}"
            members = sum(stats[f"member:{n}"][setting][key]["p50_us"] for n in paths)
            one = stats["ensemble (one run)"][setting][key]["p50_us"]
            summary[f"{setting}/{key}"] = {
                "one_graph_p50_us": one,
                "members_sum_p50_us": members,
                "ratio": one / members,
            }
    b1 = {s: summary[f"{s}/b1"] for s in SETTINGS}
    goals = {
        "one_graph_b1_p50_le_1ms": all(v["one_graph_p50_us"] <= ONE_GRAPH_GOAL_US for v in b1.values()),
        "one_graph_b1_below_members_sum": all(v["ratio"] < 1 for v in b1.values()),
    }
    return {"preset": preset, "members": list(paths), "stats": stats, "summary": summary, "goals": goals}


def print_section(section: dict, print_table) -> None:
    rows = []
    for graph, per_setting in section["stats"].items():
        for setting, per_batch in per_setting.items():
            rows.append(
                [graph, setting, *(f"{per_batch[b][q]:.1f}" for b in ("b1", "b64") for q in ("p50_us", "p99_us"))]
            )
    print(f"\n## five-member ensemble ({section['preset']} preset): ONE graph vs each member alone")
    print_table(["graph", "session", "b1 p50 µs", "b1 p99 µs", "b64 p50 µs", "b64 p99 µs"], rows)
    for key, v in section["summary"].items():
        print(
            f"{key}: one run {v['one_graph_p50_us']:.1f} µs vs members called separately "
            f"{v['members_sum_p50_us']:.1f} µs (× {v['ratio']:.2f})"
        )
    goals = section["goals"]
    print(
        f"goal (issue 13): ensemble b1 p50 ≤ {ONE_GRAPH_GOAL_US:.0f} µs: "
        f"{'met' if goals['one_graph_b1_p50_le_1ms'] else 'not met'}; below the sum of its members' calls: "
        f"{'met' if goals['one_graph_b1_below_members_sum'] else 'not met'}"
    )
