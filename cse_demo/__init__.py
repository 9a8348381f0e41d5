"""The end-to-end demo (`make demo`, `cse-demo`, `python -m cse_demo`): graph → store → API → a prediction.

It lives beside the three packages, not in them: it drives `cse_assets` through Dagster's API, `cse_serving`
through its command and HTTP, and `cse_models` only as a client would (the bundled sample, cleaned).
"""
