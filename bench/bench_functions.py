"""Benchmark of the ML functions on this machine, against serving the same model with scikit-learn in the
same run.

Measures, for a 100-tree random forest on iris (the model the issue's numbers are about):
  - warm predict latency p50/p99 over one keep-alive connection, 1 row and 100 rows per request;
  - requests per second of one process (closed loop, several connections), 1 row and 100 rows;
  - cold start: process start -> first correct prediction, the model fetched from a real iris-server;
  - memory (RSS, and its private part) of a warm predict process;
  - training time per allow-listed estimator through the train function (fit, ONNX export, check, upload).
The baseline is the same HTTP server (uvicorn, httptools, uvloop) with a Starlette app that parses the JSON
and predicts with the scikit-learn estimator unpickled from local disk, without input checks and without a
store fetch: a setup that favours it. Everything runs on 127.0.0.1; the functions run in their own venvs
(local_openfaas.funcenv), as in the tests. The machine's load and speed are recorded alongside.

    .venv/bin/python bench/bench_functions.py      # about three minutes; JSON to bench/results/functions.json
"""

from __future__ import annotations

import argparse
import json

from function_bench.baseline import baseline_model, baseline_server
from function_bench.config import RESULTS
from function_bench.run import run, summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples and no training table (a smoke run)"
    )
    parser.add_argument("--baseline-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--baseline-model", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_model:
        baseline_model(args.baseline_model)
        return
    if args.baseline_server:
        baseline_server(args.baseline_server[0], int(args.baseline_server[1]))
        return
    result = run(args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(summary(result))


if __name__ == "__main__":
    main()
