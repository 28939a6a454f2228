"""/system/secrets, as faas-provider defines it and faas-cli secret calls it: GET lists `[{"name", "namespace"}]`
(never values), POST creates and PUT updates from a types.Secret `{"name", "namespace", "value" | "rawValue"}`
(rawValue is base64, what faas-cli sends for --from-file), DELETE takes `{"name"}`. `?namespace=` or the body's
namespace, else the gateway's default. Answers 202 as faas-netes does; 409 when it exists, 404 when it does not."""

from __future__ import annotations

import base64
import binascii
import json
import logging

from aiohttp import web

from local_openfaas.runtime.provider import ProviderUnavailable
from local_openfaas.runtime.secret_store import InvalidSecret, SecretExists, SecretNotFound, SecretStore

log = logging.getLogger("mlfunctions.gateway")
_SHAPE = '{"name": "<secret>", "namespace": "<optional>", "value": "<text>"} (or "rawValue": "<base64>")'


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class SecretsAPI:
    def __init__(self, store: SecretStore, default_namespace: str):
        self.store, self.default_namespace = store, default_namespace

    def _namespace(self, request: web.Request, body: dict) -> str:
        return request.query.get("namespace") or body.get("namespace") or self.default_namespace

    async def _body(self, request: web.Request, need_value: bool) -> tuple[str, str, bytes] | web.Response:
        try:
            body = await request.json()
            name = body["name"]
            if not isinstance(body, dict) or not isinstance(name, str):
                raise TypeError
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            return _error(400, f"expected a JSON secret {_SHAPE}")
        value = b""
        if need_value:
            raw, text = body.get("rawValue"), body.get("value")
            try:
                if raw:
                    value = base64.b64decode(raw, validate=True)
                elif isinstance(text, str) and text:
                    value = text.encode()
                else:
                    return _error(400, f"secret {name} has no value: expected {_SHAPE}")
            except (binascii.Error, TypeError):
                return _error(400, "rawValue must be base64 (a JSON []byte)")
        return self._namespace(request, body), name, value

    async def list(self, request: web.Request) -> web.Response:
        namespace = self._namespace(request, {})
        try:
            names = await self.store.names(namespace)
        except InvalidSecret as error:
            return _error(400, str(error))
        except ProviderUnavailable as error:
            return _error(503, str(error))
        return web.json_response([{"name": name, "namespace": namespace} for name in names])

    async def create(self, request: web.Request) -> web.Response:
        return await self._change(request, "created", self.store.create, need_value=True)

    async def update(self, request: web.Request) -> web.Response:
        return await self._change(request, "updated", self.store.update, need_value=True)

    async def delete(self, request: web.Request) -> web.Response:
        return await self._change(request, "deleted", lambda ns, name, _value: self.store.delete(ns, name),
                                  need_value=False)

    async def _change(self, request: web.Request, what: str, action, need_value: bool) -> web.Response:
        parsed = await self._body(request, need_value)
        if isinstance(parsed, web.Response):
            return parsed
        namespace, name, value = parsed
        try:
            await action(namespace, name, value)
        except InvalidSecret as error:
            return _error(400, str(error))
        except SecretExists as error:
            return _error(409, f"{error}; update it with PUT /system/secrets")
        except SecretNotFound as error:
            return _error(404, str(error))
        except ProviderUnavailable as error:
            return _error(503, str(error))
        log.info(f"secret {what}", extra={"secret": name, "namespace": namespace})  # the name only, never the value
        return web.Response(status=202)
