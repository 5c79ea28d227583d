// Package quiverflight is a Go client for `quiver serve`, the Arrow Flight gateway of
// Quiver's shared-memory channels and compute services.
//
// `quiver serve` exposes, over gRPC:
//
//   - every Arrow channel of its user as a flight (descriptor path [NAME]): [Client.Tail]
//     reads a live tail of one (what is published after the call attached, or with
//     fromOldest the backlog other subscribers still hold first), [Client.Put] publishes
//     record batches into one (creating it if it does not exist);
//   - every compute service (a worker serving a name, e.g. Python's
//     quiver.control.Service) as a command: [Client.Call] runs a request on it and streams
//     the result batches; [FanOut] calls the same service on several servers ("shards")
//     at once and merges what they return;
//   - [Client.List] lists both.
//
// A minimal session:
//
//	client, err := quiverflight.Connect("") // quiver serve's default Unix socket
//	if err != nil { ... }
//	defer client.Close()
//	stream, err := client.Call(ctx, "totals", map[string]any{"parts": 4})
//	if err != nil { ... }
//	defer stream.Close()
//	for stream.Next() {
//		batch := stream.RecordBatch() // valid until the next call to Next
//		...
//	}
//	if err := stream.Err(); err != nil { ... }
//
// # Errors
//
// What the server reports keeps its gRPC status: [google.golang.org/grpc/status.FromError]
// and [google.golang.org/grpc/status.Code] work on every error this package returns for a
// call (an unknown channel or service is codes.NotFound, a worker's own error
// codes.InvalidArgument with its message, a worker that died codes.Unavailable naming the
// service, a refused token codes.Unauthenticated, ...). [Describe] turns such an error into
// a sentence that says what to do.
//
// # Messages larger than 4 MiB
//
// grpc-go refuses by default to receive a message larger than 4 MiB, and a record batch is
// one message. [Connect] lifts that limit to the largest gRPC allows (math.MaxInt32 bytes)
// unless [WithMaxMessageSize] says otherwise; the server has its own limit for what it
// accepts (quiver serve --max-message-size).
package quiverflight
