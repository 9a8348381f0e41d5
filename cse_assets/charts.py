"""Small PNG charts for asset metadata, embedded in markdown as base64 data URIs (the UI shows them inline).

Uses matplotlib's object API on an Agg canvas — no pyplot state, so charts are safe in threaded runs.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 80


def price_chart_png(klines: pl.DataFrame, title: str) -> bytes:
    """Close price over time (one line; the UI only needs the shape and the gaps)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(klines.get_column("open_time").to_list(), klines.get_column("close").to_numpy(), linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def loss_curve_png(history: list[dict[str, float]], title: str) -> bytes:
    """Train and validation loss per epoch (MSE on scaled targets, or cross-entropy)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = [int(e["epoch"]) for e in history]
    ax.plot(epochs, [e["train_loss"] for e in history], marker="o", label="train")
    ax.plot(epochs, [e["val_loss"] for e in history], marker="o", label="validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def forecast_chart_png(
    times: list, actual: np.ndarray, predicted: np.ndarray, lower: np.ndarray, upper: np.ndarray, title: str
) -> bytes:
    """Realized next closes against the published forecast and its interval band (held-back test windows)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.fill_between(times, lower, upper, alpha=0.25, label="interval", linewidth=0)
    ax.plot(times, actual, linewidth=0.9, label="actual close")
    ax.plot(times, predicted, linewidth=0.9, linestyle="--", label="forecast close")
    ax.set_title(title)
    ax.set_ylabel("close")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)
