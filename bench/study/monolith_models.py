"""The study's monolith holding many models: bench/monolith.py's process with one predict and one train handler
per model, POST /predict-<i>/ and /train-<i>/ for model `<MODEL_NAME>-<i>`, i < MONOLITH_MODELS; GET /_/health.

Run with the train function's interpreter, as bench/monolith.py:
    PORT=9000 MONOLITH_MODELS=20 MODEL_NAME=iris MODEL_STORE_URL=... <train venv>/bin/python bench/study/monolith_models.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

from monolith import TEMPLATE, Monolith, _handler  # noqa: E402  (bench/ is not a package)


class ManyModels(Monolith):
    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path") == "/_/health":
            return await self.apps["predict-0"](scope, receive, send)
        return await super().__call__(scope, receive, send)


def main() -> None:
    sys.path.insert(0, str(TEMPLATE))
    import function_support

    function_support.configure_logging()
    base, count = os.environ["MODEL_NAME"], int(os.environ["MONOLITH_MODELS"])
    train_module = _handler("train", "train_handler")
    predict_module = _handler("predict", "predict_handler")
    apps = {}
    for index in range(count):  # each handler reads its model's name from the environment when it is created
        os.environ["MODEL_NAME"] = f"{base}-{index}"
        apps[f"train-{index}"] = train_module.create_app()
        apps[f"predict-{index}"] = predict_module.create_app()
    uvicorn.run(ManyModels(apps), host="127.0.0.1", port=int(os.environ["PORT"]), http="httptools", loop="uvloop",
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
