"""The scikit-learn baseline, run in the train function's venv (bench_functions.py --baseline-model and
--baseline-server): the same forest, pickled, served by uvicorn with a Starlette app that parses the JSON and
predicts, without input checks and without a store fetch."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

from .config import REPO, SPEC


def baseline_model(path: str) -> None:
    sys.path.insert(0, str(REPO / "functions" / "train"))
    import datasets
    import training
    import training_request

    iris = datasets.bundled("iris")
    spec = training_request.TrainingSpec("iris", SPEC["estimator"], SPEC["params"], 0.2, 42)
    estimator = training.train(iris, spec).estimator
    Path(path).write_bytes(pickle.dumps({"estimator": estimator, "classes": iris.classes}))


def baseline_server(model_path: str, port: int) -> None:
    import numpy as np
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    loaded = pickle.loads(Path(model_path).read_bytes())
    estimator, classes = loaded["estimator"], loaded["classes"]

    async def predict(request: Request) -> JSONResponse:
        document = json.loads(await request.body())
        rows = np.asarray(document["instances"], dtype=np.float64)
        labels = estimator.predict(rows).tolist()
        return JSONResponse({"predictions": [classes[label] for label in labels]})

    app = Starlette(routes=[Route("/", predict, methods=["POST"])])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )
