"""`python -m cse_models.models --list`: the registered architectures with their parameter counts."""

from __future__ import annotations

import argparse

from flax import nnx

from cse_models.models import MODELS, build_model, parameter_count


def print_models() -> None:
    print(f"{'name':28} {'family':12} {'params':>10}  description")
    for name in MODELS:
        entry = MODELS.get(name)
        params = parameter_count(build_model(name, rngs=nnx.Rngs(0)))
        print(f"{name:28} {entry.family:12} {params:>10,}  {entry.description.splitlines()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cse_models.models")
    parser.add_argument("--list", action="store_true", help="list registered architectures (the default)")
    parser.parse_args()
    print_models()


if __name__ == "__main__":
    main()
