"""The raw features every forecast head is scaled by, read from the last row of each window: a return is
measured in trailing volatility σ·√h, a range against the trailing mean range. Their own module so the
targets, the graph and the head files can share them without importing the head layout."""

SIGMA_FEATURE = "rv_24"  # trailing realized volatility of one-step log returns
RANGE_FEATURE = "range_mean_24"  # trailing mean of log(high/low)
# σ·√h below this is taken as this: real series have flat stretches (exchange outages with a frozen price),
# where the trailing volatility is 0 and a return could not be scaled by it.
SIGMA_FLOOR = 1e-6
