"""The monolith of the study: the same train and predict handlers as the functions, served by ONE long-running
process (what the project replaced). POST /train/ trains; POST /predict/... predicts; GET /_/health.

Run with the train function's interpreter (it has every library both handlers need):
    PORT=9000 MODEL_NAME=iris MODEL_STORE_URL=... MODEL_STORE_TOKEN=... <train venv>/bin/python bench/monolith.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from pathlib import Path

import uvicorn

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
TEMPLATE = FUNCTIONS / "template" / "mlfunctions-python3"


def _handler(folder: str, module_name: str):
    """A function's handler module under a name of its own (both functions call theirs `handler`)."""
    sys.path.insert(0, str(FUNCTIONS / folder))
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / folder / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Monolith:
    """Routes /train/* and /predict/* to the two handlers' ASGI apps and runs both apps' lifespans."""

    def __init__(self, apps: dict[str, object]):
        self.apps = apps

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        path = scope.get("path", "/")
        if path == "/_/health":
            return await self.apps["predict"](scope, receive, send)
        prefix, _, rest = path.lstrip("/").partition("/")
        app = self.apps.get(prefix)
        if app is None:
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": b'{"message": "use /train/ or /predict/"}'})
        await app({**scope, "path": "/" + rest, "raw_path": ("/" + rest).encode()}, receive, send)

    async def _lifespan(self, receive, send):
        channels = []
        for app in self.apps.values():
            inbox, outbox = asyncio.Queue(), asyncio.Queue()
            task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
            channels.append((inbox, outbox, task))
        while True:
            message = await receive()
            phase = message["type"].split(".")[1]  # startup | shutdown
            for inbox, outbox, _ in channels:
                await inbox.put(message)
                answer = await outbox.get()
                if answer["type"].endswith("failed"):
                    return await send(answer)
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return


def main() -> None:
    sys.path.insert(0, str(TEMPLATE))
    import function_support

    function_support.configure_logging()
    apps = {"train": _handler("train", "train_handler").create_app(),
            "predict": _handler("predict", "predict_handler").create_app()}
    uvicorn.run(Monolith(apps), host="127.0.0.1", port=int(os.environ["PORT"]), http="httptools", loop="uvloop",
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
