"""notify's entrypoints: the event consumer's handler (`events`), one sender loop per channel
(`sender_loop`) and the gRPC servicer (`grpc_api`, `translate`)."""
