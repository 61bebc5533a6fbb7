"""A minimal gRPC service for testing ``ServiceProcess``: only the standard health service.

Run as ``PORT=50051 python -m tests.infra.health_server``. It reports SERVING once listening
and exits with code 0 on SIGTERM/SIGINT after a graceful stop. Without ``PORT`` it fails at
once (which the tests use to check start-up failure reporting).
"""

from __future__ import annotations

import asyncio
import os
import signal

import grpc  # type: ignore[import-untyped, unused-ignore]  # grpcio ships no type stubs
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


async def serve(port: int) -> None:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"health server listening on 127.0.0.1:{port}", flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    print("health server stopping", flush=True)
    await servicer.enter_graceful_shutdown()
    await server.stop(grace=2)


def main() -> None:
    port = int(os.environ["PORT"])
    asyncio.run(serve(port))


if __name__ == "__main__":
    main()
