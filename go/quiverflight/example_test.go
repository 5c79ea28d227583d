package quiverflight_test

import (
	"context"
	"fmt"
	"log"

	"github.com/apache/arrow-go/v18/arrow"

	"quiver.dev/go/quiverflight"
)

// Tail a channel until its publisher goes away.
func ExampleClient_Tail() {
	client, err := quiverflight.Connect("") // quiver serve's default socket
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	stream, err := client.Tail(context.Background(), "ledger", false)
	if err != nil {
		log.Fatal(quiverflight.Describe(err, client.Addr()))
	}
	defer stream.Close()
	for stream.Next() {
		fmt.Println(stream.RecordBatch().NumRows(), "rows")
	}
	if err := stream.Err(); err != nil {
		log.Fatal(quiverflight.Describe(err, client.Addr()))
	}
}

// Run a request on a compute service, over TCP with the token quiver serve wrote.
func ExampleClient_Call() {
	client, err := quiverflight.Connect("127.0.0.1:50051",
		quiverflight.WithTokenFile("/run/user/1000/quiver/flight-1234.token"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	stream, err := client.Call(context.Background(), "totals", map[string]any{"parts": 4})
	if err != nil {
		log.Fatal(quiverflight.Describe(err, client.Addr()))
	}
	defer stream.Close()
	var rows int64
	for stream.Next() {
		rows += stream.RecordBatch().NumRows()
	}
	if err := stream.Err(); err != nil { // the worker's error: codes.InvalidArgument, ...
		log.Fatal(quiverflight.Describe(err, client.Addr()))
	}
	fmt.Println(rows, "rows")
}

// Call the same service on every shard and merge the results.
func ExampleFanOut() {
	var shards []*quiverflight.Client
	for _, addr := range []string{"grpc+unix:///run/shard0/flight.sock", "grpc+unix:///run/shard1/flight.sock"} {
		client, err := quiverflight.Connect(addr)
		if err != nil {
			log.Fatal(err)
		}
		defer client.Close()
		shards = append(shards, client)
	}

	var rows int64 // each is never called concurrently: no lock needed
	errs := quiverflight.FanOut(context.Background(), shards, "totals", map[string]any{"parts": 4},
		func(shard int, batch arrow.RecordBatch) error {
			rows += batch.NumRows()
			return nil
		})
	for _, err := range errs {
		if err != nil { // a *ShardError naming the shard; the others' batches still arrived
			log.Print(quiverflight.Describe(err, ""))
		}
	}
	fmt.Println(rows, "rows")
}
