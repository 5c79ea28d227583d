package quiverflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"google.golang.org/grpc/status"
)

// A Stream is the record batches of a DoGet: a channel's live tail ([Client.Tail]) or a
// service's results ([Client.Call]). Read it like a bufio.Scanner:
//
//	for stream.Next() {
//		use(stream.RecordBatch())
//	}
//	err := stream.Err()
//
// and Close it when done (also after it ended). A Stream is not safe for concurrent use.
type Stream struct {
	reader *flight.Reader
	cancel context.CancelFunc
	err    error
	closed bool
}

// Tail reads channel live: the record batches published after the call attached (with
// fromOldest, first the backlog the channel still keeps for other subscribers, oldest
// first), until the channel's publisher goes away (the stream then ends without error),
// ctx is done, or the stream is closed. An unknown channel is codes.NotFound.
//
// Tail returns once the server sent the channel's schema, which it does as soon as the
// call is attached: a batch published after Tail returned is in the stream.
func (c *Client) Tail(ctx context.Context, channel string, fromOldest bool) (*Stream, error) {
	if channel == "" {
		return nil, errors.New("quiverflight: Tail: no channel named")
	}
	ticket := channel
	if fromOldest {
		ticket += "?from=oldest"
	}
	return c.doGet(ctx, []byte(ticket))
}

// Call runs request on the worker serving service and streams its result batches; the
// stream ends when the worker is done. request is marshalled with encoding/json (nil
// means {}; a json.RawMessage or []byte is taken as JSON text already). The worker's error
// is the stream's error (from Call or from [Stream.Err]) with its gRPC status: typically
// codes.InvalidArgument with the worker's message; an unknown service is
// codes.NotFound, a worker that died mid-stream codes.Unavailable naming the service.
func (c *Client) Call(ctx context.Context, service string, request any) (*Stream, error) {
	ticket, err := ComputeTicket(service, request)
	if err != nil {
		return nil, err
	}
	return c.doGet(ctx, ticket)
}

// ComputeTicket is the DoGet ticket with which `quiver serve` runs request on service:
// {"service": SERVICE, "request": REQUEST}, request marshalled as [Client.Call] does.
func ComputeTicket(service string, request any) ([]byte, error) {
	if service == "" {
		return nil, errors.New("quiverflight: no service named")
	}
	var body []byte
	switch r := request.(type) {
	case nil:
		body = []byte("{}")
	case json.RawMessage:
		body = r
	case []byte:
		body = r
	default:
		marshalled, err := json.Marshal(request)
		if err != nil {
			return nil, fmt.Errorf("quiverflight: the request of %s: %w", service, err)
		}
		body = marshalled
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("quiverflight: the request of %s is not valid JSON", service)
	}
	return json.Marshal(struct {
		Service string          `json:"service"`
		Request json.RawMessage `json:"request"`
	}{service, body})
}

func (c *Client) doGet(ctx context.Context, ticket []byte) (*Stream, error) {
	// Cancelling this context ends the call: the server sees it cancelled and lets go of
	// its subscriber (or stops the worker's call).
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.fc.DoGet(ctx, &flight.Ticket{Ticket: ticket})
	if err != nil {
		cancel()
		return nil, statusError(err)
	}
	reader, err := flight.NewRecordReader(call) // reads the schema message
	if err != nil {
		cancel()
		return nil, statusError(err)
	}
	return &Stream{reader: reader, cancel: cancel}, nil
}

// Schema is the schema of the stream's batches.
func (s *Stream) Schema() *arrow.Schema { return s.reader.Schema() }

// Next reads the next batch; false at the end of the stream, on an error (see Err) and
// after Close.
func (s *Stream) Next() bool {
	if s.closed || s.err != nil {
		return false
	}
	if s.reader.Next() {
		return true
	}
	if err := s.reader.Err(); err != nil && !errors.Is(err, io.EOF) {
		s.err = statusError(err)
	}
	return false
}

// RecordBatch is the batch Next read. It is valid until the next call to Next or Close;
// Retain it to keep it longer (and Release it then).
func (s *Stream) RecordBatch() arrow.RecordBatch { return s.reader.RecordBatch() }

// Err is why the stream ended early: nil if it ended well (the channel's publisher went
// away, the worker finished) or has not ended. An error the server sent keeps its gRPC
// status; a stream ended by its context is codes.Canceled or codes.DeadlineExceeded.
func (s *Stream) Err() error { return s.err }

// Close ends the stream (cancelling the call if it is still going) and releases its
// memory, including the current batch. It may be called more than once.
func (s *Stream) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.cancel()
	s.reader.Release()
}

// A Writer publishes record batches into a channel through DoPut ([Client.Put]). It is
// not safe for concurrent use.
type Writer struct {
	call   flight.FlightService_DoPutClient
	writer *flight.Writer
	cancel context.CancelFunc
	schema *arrow.Schema
	err    error
	closed bool
}

// Put opens a DoPut into channel: batches written are published there (the server
// creates the channel if it does not exist, and refuses a schema the channel cannot
// take). Close the Writer to learn whether the server took everything; cancelling ctx
// abandons the put.
func (c *Client) Put(ctx context.Context, channel string, schema *arrow.Schema) (*Writer, error) {
	if channel == "" {
		return nil, errors.New("quiverflight: Put: no channel named")
	}
	if schema == nil {
		return nil, errors.New("quiverflight: Put: no schema")
	}
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.fc.DoPut(ctx)
	if err != nil {
		cancel()
		return nil, statusError(err)
	}
	writer := flight.NewRecordWriter(call, ipc.WithSchema(schema))
	writer.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{channel}})
	return &Writer{call: call, writer: writer, cancel: cancel, schema: schema}, nil
}

// Schema is the schema the Writer was opened with.
func (w *Writer) Schema() *arrow.Schema { return w.schema }

// Write sends batch (of the Writer's schema). An error is final: the server ended the
// call (its status says why: a refused schema is codes.InvalidArgument, say), or the
// batch could not be sent; Close returns the same error.
func (w *Writer) Write(batch arrow.RecordBatch) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("quiverflight: Write after Close")
	}
	if err := w.writer.Write(batch); err != nil {
		w.fail(err)
		return w.err
	}
	return nil
}

// Close finishes the put and returns the server's final status: nil when every batch was
// published, else the error the server ended the call with. It may be called more than
// once.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	defer w.cancel()
	if w.err != nil {
		return w.err
	}
	if err := w.writer.Close(); err != nil { // sends the schema if no batch was sent
		w.fail(err)
		return w.err
	}
	if err := w.call.CloseSend(); err != nil {
		w.fail(err)
		return w.err
	}
	// The call's outcome: the server's PutResults (ignored), then its status.
	for {
		if _, err := w.call.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				w.err = statusError(err)
			}
			return w.err
		}
	}
}

// fail records why the put failed. A send that fails with io.EOF only says the server
// ended the call: its status, read from the stream, says why. Any other error (a batch of
// another schema, a message over the size limit) is the client's own, and ends the call.
func (w *Writer) fail(err error) {
	if errors.Is(err, io.EOF) {
		for {
			if _, recvErr := w.call.Recv(); recvErr != nil {
				if !errors.Is(recvErr, io.EOF) {
					err = recvErr
				}
				break
			}
		}
	}
	w.err = statusError(err)
	w.cancel()
}

// statusError returns the gRPC status error err wraps (arrow-go wraps some of them in
// text of its own), or err itself when it wraps none.
func statusError(err error) error {
	var withStatus interface{ GRPCStatus() *status.Status }
	if errors.As(err, &withStatus) {
		if st := withStatus.GRPCStatus(); st != nil {
			return st.Err()
		}
	}
	return err
}
