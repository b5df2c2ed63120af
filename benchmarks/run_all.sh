#!/usr/bin/env bash
# The quick benchmarks (< 10 minutes on 2 CPU cores): speed ratios and memory. Writes benchmarks/results/*.json.
# The accuracy runs take longer (ATIS ~15 min at the recipe's 20 epochs, SNIPS ~20 min at --epochs 10, per seed on
# 2 cores): run benchmarks/accuracy.py yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
python benchmarks/speed.py --repeats 3 --out benchmarks/results/speed.json
python benchmarks/plot.py
