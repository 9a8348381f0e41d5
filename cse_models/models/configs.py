"""Architecture configs as frozen dataclasses, one per family, with the CryptoSpreadEdge defaults.

Every config carries `n_features` (4 for ohlc4, 9 for mur9), `seq_len` (the window; seed default 100)
and `n_outputs` (1 = regression on the next close, 3 = Buy/Sell/Hold logits). Training fills these
three from the data (`training.run.model_config_for`); the rest are the architecture's own knobs.
Validation happens at construction and names the field, so a bad config never reaches XLA.
`demo()` gives the small preset the demo and the tests train in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cse_models.errors import ConfigError


def require_positive(cfg: object, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value < 1:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be ≥ 1, got {value}")


def require_dropout(cfg: object, name: str = "dropout") -> None:
    value = getattr(cfg, name)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{type(cfg).__name__}.{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class CNNConfig:
    n_features: int = 4
    seq_len: int = 100
    n_outputs: int = 3
    channels: tuple[int, ...] = (32, 64, 128)  # one conv block per entry
    kernel_size: int = 3
    hidden: int = 128  # dense layer after the convolutions
    n_heads: int = 4  # AttentionCNN1D
    dropout: float = 0.2
    window_norm: bool = False  # RevIN-style per-window normalisation of the input (layers.window_input)

    def __post_init__(self) -> None:
        require_positive(self, "n_features", "seq_len", "n_outputs", "kernel_size", "hidden", "n_heads")
        require_dropout(self)
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"CNNConfig.channels must be positive sizes, got {self.channels}")
        if self.seq_len < self.kernel_size:
            raise ConfigError(f"CNNConfig.seq_len {self.seq_len} is shorter than kernel_size {self.kernel_size}")
        if self.channels[-1] % self.n_heads:
            raise ConfigError(f"CNNConfig.n_heads {self.n_heads} must divide the last channels {self.channels[-1]}")

    @classmethod
    def demo(cls, **overrides) -> CNNConfig:
        return replace(cls(channels=(16, 32), hidden=32, n_heads=2), **overrides)


@dataclass(frozen=True)
class RNNConfig:
    n_features: int = 4
    seq_len: int = 100
    n_outputs: int = 3
    hidden: int = 128
    layers: int = 3
    n_heads: int = 4  # StackedLSTM / BidirectionalLSTM attention
    conv_channels: int = 64  # ConvLSTM feature extractor
    kernel_size: int = 3
    dropout: float = 0.2
    bidirectional: bool = False  # FinancialLSTM's optional second direction (the seed's switch)
    window_norm: bool = False  # RevIN-style per-window normalisation of the input (layers.window_input)

    def __post_init__(self) -> None:
        require_positive(
            self, "n_features", "seq_len", "n_outputs", "hidden", "layers", "n_heads", "conv_channels", "kernel_size"
        )
        require_dropout(self)
        if self.hidden % self.n_heads:
            raise ConfigError(f"RNNConfig.n_heads {self.n_heads} must divide hidden {self.hidden}")
        if self.seq_len < self.kernel_size:
            raise ConfigError(f"RNNConfig.seq_len {self.seq_len} is shorter than kernel_size {self.kernel_size}")

    @classmethod
    def demo(cls, **overrides) -> RNNConfig:
        return replace(cls(hidden=32, layers=2, n_heads=2, conv_channels=16), **overrides)


@dataclass(frozen=True)
class TransformerConfig:
    n_features: int = 4
    seq_len: int = 100
    n_outputs: int = 3
    d_model: int = 256
    n_heads: int = 8
    layers: int = 6
    ff_dim: int = 1024
    conv_channels: int = 64  # TransformerWithCNN front end
    kernel_size: int = 3
    dropout: float = 0.1
    window_norm: bool = False  # RevIN-style per-window normalisation of the input (layers.window_input)

    def __post_init__(self) -> None:
        require_positive(
            self,
            "n_features",
            "seq_len",
            "n_outputs",
            "d_model",
            "n_heads",
            "layers",
            "ff_dim",
            "conv_channels",
            "kernel_size",
        )
        require_dropout(self)
        if self.d_model % self.n_heads:
            raise ConfigError(f"TransformerConfig.n_heads {self.n_heads} must divide d_model {self.d_model}")
        if self.seq_len < self.kernel_size:
            raise ConfigError(
                f"TransformerConfig.seq_len {self.seq_len} is shorter than kernel_size {self.kernel_size}"
            )

    @classmethod
    def demo(cls, **overrides) -> TransformerConfig:
        return replace(cls(d_model=32, n_heads=4, layers=2, ff_dim=64, conv_channels=16), **overrides)
