"""The price head: the next close and its log return log(close / last close). λ = 0 in the calibration
makes the close the last close exactly (persistence)."""

from cse_models.heads.spec import HeadSpec

HEAD = HeadSpec(
    name="price",
    outputs=("close", "return"),
    shape=(),
    card=lambda p: (p.last_close * p.exp(p.ret), p.ret),
    from_outputs=lambda named: named["close"][:, 0],
    truth=lambda t: t.close,
    scoring="close_mae",
    reference="persistence",
    space="log_return",
    render="price",
)
