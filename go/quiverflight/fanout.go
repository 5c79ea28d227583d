package quiverflight

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc/status"
)

// A ShardError is the error [FanOut] returns for a shard whose call failed: which shard
// (its index in the shards given, and its address) and why. status.FromError and
// status.Code see the status of Err (the server's code and message).
type ShardError struct {
	Shard int    // the shard's index in FanOut's shards
	Addr  string // the shard's address (Client.Addr)
	Err   error  // the call's error, or the one each returned
}

// Error names the shard: "shard 1 (grpc+unix:///...): rpc error: ...".
func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %d (%s): %v", e.Shard, e.Addr, e.Err)
}

// Unwrap returns Err.
func (e *ShardError) Unwrap() error { return e.Err }

// GRPCStatus is the status of Err (nil if it has none), for status.FromError.
func (e *ShardError) GRPCStatus() *status.Status {
	var withStatus interface{ GRPCStatus() *status.Status }
	if errors.As(e.Err, &withStatus) {
		return withStatus.GRPCStatus()
	}
	return nil
}

// FanOut calls service with request on every shard in parallel (each a `quiver serve` of
// its own, e.g. one per machine or per pipeline) and hands every batch of every shard to
// each, with the shard's index. each is never called concurrently (FanOut serializes the
// calls), so it may merge into shared state without locking; the batch is valid only
// during the call (Retain it to keep it). Batches of one shard arrive in order; those of
// different shards interleave.
//
// FanOut returns when every shard's stream has ended, with one error per shard (nil if
// that shard's stream ended well, else a *[ShardError]). A shard's failure, or an error
// each returns for it, ends that shard's stream only: the others go on. Cancelling ctx
// stops them all (their errors are then codes.Canceled, or codes.DeadlineExceeded), and
// each is not called again once ctx is done; cancel it from each to stop early. A nil
// shard fails with an error of its own.
func FanOut(ctx context.Context, shards []*Client, service string, request any,
	each func(shard int, batch arrow.RecordBatch) error) []error {
	errs := make([]error, len(shards))
	ticket, err := ComputeTicket(service, request)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	var mu sync.Mutex // serializes each
	var wg sync.WaitGroup
	for i, shard := range shards {
		if shard == nil {
			errs[i] = &ShardError{Shard: i, Err: errors.New("no client (nil)")}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fanOne(ctx, shard, ticket, func(batch arrow.RecordBatch) error {
				if each == nil {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if err := ctx.Err(); err != nil { // cancelled while this shard waited its turn
					return status.FromContextError(err).Err()
				}
				return each(i, batch)
			}); err != nil {
				errs[i] = &ShardError{Shard: i, Addr: shard.Addr(), Err: err}
			}
		}()
	}
	wg.Wait()
	return errs
}

// fanOne reads one shard's results to the end.
func fanOne(ctx context.Context, shard *Client, ticket []byte, each func(arrow.RecordBatch) error) error {
	stream, err := shard.doGet(ctx, ticket)
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Next() {
		if err := each(stream.RecordBatch()); err != nil {
			return err
		}
	}
	return stream.Err()
}
