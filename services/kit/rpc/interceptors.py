"""Cross-cutting concerns of every RPC: request decoding, error mapping and authentication.

Order matters: `ErrorInterceptor` is outermost, so whatever an inner layer raises (an
`Unauthenticated` from `AuthInterceptor`, a `DomainError` from a handler, a bug) leaves as a proper
status. Both wrap only unary-unary methods of the service's own API; health and reflection pass
through untouched so Kubernetes probes need no token.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
from google.protobuf.message import Message

from services.kit.auth import TokenVerifier, bind_principal, reset_principal
from services.kit.db import lost_database
from services.kit.errors import DomainError, Unauthenticated, Unavailable
from services.kit.rpc.status import internal_status, status_for
from services.kit.wire import decode

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
Behavior = Callable[[Any, Context], Awaitable[Any]]


class _Wrapping(grpc.aio.ServerInterceptor):
    """Wraps the unary-unary handlers of methods under `prefixes`, caching the wrapper per method."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self._prefixes = prefixes
        self._cache: dict[str, Handler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or not method.startswith(self._prefixes):
            return handler
        wrapped = self.wrap(handler)
        self._cache[method] = wrapped
        return wrapped

    def wrap(self, handler: Handler) -> Handler:
        raise NotImplementedError


class ErrorInterceptor(_Wrapping):
    """Decodes requests itself (so bad bytes name their field) and maps every error in one place."""

    def wrap(self, handler: Handler) -> Handler:
        inner = cast(Behavior, handler.unary_unary)
        # The generated deserializer is the request class's bound `FromString`.
        request_type: type[Message] = getattr(handler.request_deserializer, "__self__")  # noqa: B009

        async def behavior(raw: bytes, context: Context) -> Any:
            try:
                return await inner(decode(request_type, raw), context)
            except DomainError as exc:
                code, message, trailer = status_for(exc)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if lost_database(exc):  # retryable: request ids make the retry safe
                    log.warning("database unavailable: %r", exc)
                    code, message, trailer = status_for(Unavailable("the database is unavailable; retry shortly"))
                else:
                    request_id = uuid.uuid4().hex
                    log.exception("unhandled error (request id %s)", request_id)
                    code, message, trailer = internal_status(request_id)
            context.set_trailing_metadata(trailer)
            await context.abort(code, message)

        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=None, response_serializer=handler.response_serializer
        )


class AuthInterceptor(_Wrapping):
    """Requires `authorization: Bearer <JWT>` and binds the caller for `current_principal()`."""

    def __init__(self, verifier: TokenVerifier, prefixes: tuple[str, ...]) -> None:
        super().__init__(prefixes)
        self._verifier = verifier

    def wrap(self, handler: Handler) -> Handler:
        inner = cast(Behavior, handler.unary_unary)

        async def behavior(request: Any, context: Context) -> Any:
            principal = self._verifier.verify(_bearer_token(context))
            token = bind_principal(principal)
            try:
                return await inner(request, context)
            finally:
                reset_principal(token)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _bearer_token(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
            return token.strip()
    raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
