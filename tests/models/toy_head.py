"""A toy forecast head for the registry test: a copy of the volatility head under another name, rendered
as plain values. Registered only inside the test (and inside the server process that test starts)."""

import dataclasses

from cse_models.heads import volatility

TOY = dataclasses.replace(
    volatility.HEAD,
    name="toy_range",
    outputs=("toy_range",),
    from_outputs=lambda named: named["toy_range"][:, 0],
    render="values",
)
