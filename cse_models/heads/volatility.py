"""The volatility head: the next horizon's log(high / low), the trailing mean range × exp(the network's
log range ratio)."""

from cse_models.heads.spec import HeadSpec

HEAD = HeadSpec(
    name="volatility",
    outputs=("volatility",),
    shape=(),
    card=lambda p: (p.range_ref * p.exp(p.out[:, 1:2]),),
    from_outputs=lambda named: named["volatility"][:, 0],
    truth=lambda t: t.range,
    scoring="range_mae",
    reference="trailing_mean",
    space="log",
    render="volatility",
)
