"""A toy forecast head for the registry test: a copy of the volatility head under another name, rendered
as plain values. Registered only inside the test (and inside the server process that test starts)."""

from cse_models.heads.spec import HeadSpec

TOY = HeadSpec(
    name="toy_range",
    outputs=("toy_range",),
    shape=(),
    card=lambda p: (p.range_ref * p.exp(p.out[:, 1:2]),),
    from_outputs=lambda named: named["toy_range"][:, 0],
    truth=lambda t: t.range,
    scoring="range_mae",
    reference="trailing_mean",
    space="log",
    render="values",
)
