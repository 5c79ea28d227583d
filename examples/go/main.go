// Command flightclient reads and writes Quiver channels, and calls Quiver compute services,
// over Arrow Flight, from Go.
//
// `quiver serve` exposes every Arrow channel of a machine as one flight (descriptor path
// [NAME], ticket "NAME"), and every compute service as a command (ticket
// {"service": NAME, "request": {...}}). This client uses the Go client library of
// go/quiverflight (on Apache Arrow's Go Flight client) to
//
//	flightclient list                          # the flights and their counters (quiver serve's default socket)
//	flightclient get -channel ledger -batches 10
//	flightclient -addr 127.0.0.1:50051 -token-file TOKEN put -channel ledger -batches 10 -rows 1000
//	flightclient call -service totals -request '{"parts": 4}'
//
// `get`, `put` and `call` print one JSON line, {"batches":B,"rows":R,"checksum":C}, where C
// is the sum of the int64 column named by -sum-column ("amount" by default) over every row
// received or sent (nulls count as 0; -sum-column "" turns the sum off). A producer that
// knows what it published can compare.
//
// `put` sends batches of a fixed schema, {id int64, amount int64, name utf8} (all nullable),
// with, for the batch b (from 0) and its row r (from 0) of a put of R rows per batch:
//
//	id = b*R + r,  amount = (id*37) % 1001 - 500,  name = "row-<id>"
//
// Errors (the server is unreachable, the channel or service is unknown, the token is
// refused, the service failed, ...) are printed on stderr and exit with code 1; bad usage
// exits with code 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"quiver.dev/go/quiverflight"
)

const usage = `usage: flightclient [-addr ADDRESS] [-token-file F] [-tls-ca FILE] [-timeout D] COMMAND [flags]

commands:
  list [-json]                              the flights: each Arrow channel (name, schema, counters)
                                            and each compute service (name, result schema)
  get  -channel NAME [-batches N]           DoGet: a live tail of the channel; N batches, then cancel
       [-from-oldest] [-sum-column COL]     (N=0: until the channel's publisher is gone)
  put  -channel NAME [-batches N] [-rows R] DoPut: N batches of R rows of {id, amount, name}
       [-sum-column COL]
  call -service NAME [-request JSON]        DoGet of a compute ticket: the service's result batches
       [-sum-column COL]

get, put and call print {"batches":B,"rows":R,"checksum":C}: C is the sum of the int64
column COL ("amount" by default). -addr is quiver serve's default Unix socket unless given:
grpc+unix:///PATH, HOST:PORT, grpc://HOST:PORT or grpc+tls://HOST:PORT (TCP needs the token).

global flags:
`

// summary is what get, put and call print.
type summary struct {
	Batches  int64 `json:"batches"`
	Rows     int64 `json:"rows"`
	Checksum int64 `json:"checksum"`
}

// putSchema is the schema of the batches that put sends.
var putSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func main() {
	global := flag.NewFlagSet("flightclient", flag.ContinueOnError)
	addr := global.String("addr", quiverflight.DefaultAddr(), "the server: grpc+unix:///SOCKET (quiver serve's default, only this user), HOST:PORT, grpc://HOST:PORT or grpc+tls://HOST:PORT")
	token := global.String("token", "", "bearer token (sent as 'authorization: Bearer TOKEN'); prefer -token-file, since a command line is visible to other users")
	tokenFile := global.String("token-file", "", "read the bearer token from the first line of this file (quiver serve prints the one it made for a TCP listener)")
	tlsCA := global.String("tls-ca", "", "PEM file of the roots that sign the server's certificate (grpc+tls; default: the system's)")
	timeout := global.Duration("timeout", 0, "give up after this long (e.g. 30s; 0: no limit)")
	global.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		global.PrintDefaults()
	}
	if err := global.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if global.NArg() == 0 {
		global.Usage()
		os.Exit(2)
	}
	command, args := global.Arg(0), global.Args()[1:]
	if *tokenFile != "" {
		text, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "flightclient: -token-file: %v\n", err)
			os.Exit(2)
		}
		*token = strings.TrimSpace(strings.SplitN(string(text), "\n", 2)[0])
	}

	// Ctrl-C (or SIGTERM) ends the command; get and call then print what they received so far.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	var err error
	switch command {
	case "list":
		err = runList(ctx, *addr, *token, *tlsCA, args)
	case "get":
		err = runGet(ctx, *addr, *token, *tlsCA, args)
	case "put":
		err = runPut(ctx, *addr, *token, *tlsCA, args)
	case "call":
		err = runCall(ctx, *addr, *token, *tlsCA, args)
	default:
		fmt.Fprintf(os.Stderr, "flightclient: unknown command %q (list, get, put or call)\n", command)
		os.Exit(2)
	}
	var usageErr usageError
	switch {
	case errors.Is(err, errFlagsPrinted):
		os.Exit(2)
	case errors.As(err, &usageErr):
		fmt.Fprintf(os.Stderr, "flightclient %s: %v\n", command, err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "flightclient %s: %v\n", command, quiverflight.Describe(err, *addr))
		os.Exit(1)
	}
}

type usageError struct{ error }

// errFlagsPrinted: the flag package has already printed the error and the usage.
var errFlagsPrinted = usageError{errors.New("bad flags")}

func subcommandFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("flightclient "+name, flag.ContinueOnError)
}

// connect opens a client; gRPC connects lazily, so an unreachable server shows up as
// codes.Unavailable on the first call.
func connect(addr, token, tlsCA string) (*quiverflight.Client, error) {
	opts := []quiverflight.Option{quiverflight.WithToken(token)}
	if tlsCA != "" {
		opts = append(opts, quiverflight.WithTLSRoots(tlsCA))
	}
	client, err := quiverflight.Connect(addr, opts...)
	if errors.Is(err, quiverflight.ErrBadAddress) {
		return nil, usageError{fmt.Errorf("-addr %q: the scheme must be grpc+unix://, grpc://, grpc+tcp:// or grpc+tls://", addr)}
	}
	return client, err
}

// ---- list ----------------------------------------------------------------------------

type listedFlight struct {
	Name        string          `json:"name"`
	Service     bool            `json:"service,omitempty"`
	Schema      []string        `json:"schema"`
	Counters    json.RawMessage `json:"counters,omitempty"`
	Description string          `json:"description,omitempty"`
}

func runList(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("list")
	asJSON := fs.Bool("json", false, "one JSON object per flight: {\"name\", \"schema\", \"counters\"} for a channel, {\"name\", \"service\": true, \"schema\", \"description\"} for a service")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	client, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	flights, err := client.List(ctx)
	if err != nil {
		return err
	}
	for _, f := range flights {
		entry := listedFlight{Name: f.Name, Service: f.Service, Description: f.Description}
		if f.Schema != nil {
			for _, field := range f.Schema.Fields() {
				entry.Schema = append(entry.Schema, field.Name+": "+field.Type.String())
			}
		} else {
			entry.Schema = []string{"(unreadable schema: " + f.SchemaErr.Error() + ")"}
		}
		if !f.Service {
			entry.Counters = f.Metadata
		}
		if *asJSON {
			line, _ := json.Marshal(entry)
			fmt.Println(string(line))
			continue
		}
		if f.Service {
			fmt.Printf("%s (compute service)\n", entry.Name)
		} else {
			fmt.Println(entry.Name)
		}
		fmt.Printf("  schema:   %s\n", strings.Join(entry.Schema, ", "))
		if entry.Counters != nil {
			fmt.Printf("  counters: %s\n", compactJSON(entry.Counters))
		}
		if entry.Description != "" {
			fmt.Printf("  about:    %s\n", entry.Description)
		}
	}
	if len(flights) == 0 && !*asJSON {
		fmt.Println("(no Arrow channels)")
	}
	return nil
}

func compactJSON(raw []byte) string {
	var out strings.Builder
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(out.String())
}

// ---- get and call ---------------------------------------------------------------------

func runGet(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("get")
	channel := fs.String("channel", "", "the channel (required)")
	batches := fs.Int64("batches", 0, "stop after this many batches (0: until the publisher is gone)")
	fromOldest := fs.Bool("from-oldest", false, "start with the backlog the channel still keeps for other subscribers")
	sumColumn := fs.String("sum-column", "amount", "the int64 column summed into checksum (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	if *channel == "" || *batches < 0 {
		return usageError{errors.New("-channel NAME is required and -batches must be >= 0")}
	}
	client, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	// An unknown channel is a clear NotFound here. Closing the stream ends the live tail:
	// the server sees the call cancelled.
	stream, err := client.Tail(ctx, *channel, *fromOldest)
	if err != nil {
		return interrupted(ctx, err, summary{})
	}
	defer stream.Close()
	return readSummary(ctx, stream, *batches, *sumColumn, fmt.Sprintf("channel %q", *channel))
}

func runCall(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("call")
	service := fs.String("service", "", "the compute service (required)")
	request := fs.String("request", "{}", "the request, a JSON object handed to the service")
	sumColumn := fs.String("sum-column", "amount", "the int64 column summed into checksum (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	if *service == "" {
		return usageError{errors.New("-service NAME is required")}
	}
	if !json.Valid([]byte(*request)) {
		return usageError{fmt.Errorf("-request %q is not valid JSON", *request)}
	}
	client, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	// The stream ends when the worker is done; its error is the call's status.
	stream, err := client.Call(ctx, *service, json.RawMessage(*request))
	if err != nil {
		return interrupted(ctx, err, summary{})
	}
	defer stream.Close()
	return readSummary(ctx, stream, 0, *sumColumn, fmt.Sprintf("service %q", *service))
}

// readSummary reads up to limit batches (0: all) and prints their summary.
func readSummary(ctx context.Context, stream *quiverflight.Stream, limit int64, sumColumn, what string) error {
	column := -1
	if sumColumn != "" {
		indices := stream.Schema().FieldIndices(sumColumn)
		if len(indices) == 0 || stream.Schema().Field(indices[0]).Type.ID() != arrow.INT64 {
			return fmt.Errorf("%s has no int64 column %q (pick one with -sum-column, or -sum-column \"\")",
				what, sumColumn)
		}
		column = indices[0]
	}

	var got summary
	for limit == 0 || got.Batches < limit {
		if !stream.Next() {
			if err := stream.Err(); err != nil {
				return interrupted(ctx, err, got)
			}
			break // the end: the channel's publisher is gone, or the worker is done
		}
		batch := stream.RecordBatch()
		got.Batches++
		got.Rows += batch.NumRows()
		if column >= 0 {
			got.Checksum += sumInt64(batch.Column(column).(*array.Int64))
		}
	}
	stream.Close() // enough: end a live tail
	return printSummary(got)
}

// interrupted prints what a get or call received when Ctrl-C or -timeout ended it; other
// errors pass.
func interrupted(ctx context.Context, err error, got summary) error {
	if ctx.Err() != nil && status.Code(err) == codes.Canceled {
		return printSummary(got)
	}
	return err
}

func sumInt64(values *array.Int64) int64 {
	var sum int64
	for i := 0; i < values.Len(); i++ {
		if values.IsValid(i) {
			sum += values.Value(i)
		}
	}
	return sum
}

func printSummary(s summary) error {
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}

// ---- put ------------------------------------------------------------------------------

func runPut(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("put")
	channel := fs.String("channel", "", "the channel (required; the server creates it if absent)")
	batches := fs.Int64("batches", 1, "how many batches to send")
	rows := fs.Int64("rows", 1000, "rows per batch")
	sumColumn := fs.String("sum-column", "amount", "the column summed into checksum: id or amount (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	if *channel == "" || *batches < 0 || *rows < 0 {
		return usageError{errors.New("-channel NAME is required; -batches and -rows must be >= 0")}
	}
	if *sumColumn != "" && *sumColumn != "id" && *sumColumn != "amount" {
		return usageError{fmt.Errorf("-sum-column %q: put sends int64 columns id and amount only", *sumColumn)}
	}
	client, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	writer, err := client.Put(ctx, *channel, putSchema)
	if err != nil {
		return err
	}
	defer writer.Close()
	builder := array.NewRecordBuilder(memory.DefaultAllocator, putSchema)
	defer builder.Release()
	var sent summary
	for b := int64(0); b < *batches; b++ {
		batch := makeBatch(builder, b, *rows)
		err := writer.Write(batch)
		batch.Release()
		if err != nil {
			return err // the server ended the call (a schema mismatch, say): its status says why
		}
		sent.Batches++
		sent.Rows += *rows
		for r := int64(0); r < *rows; r++ {
			id := b**rows + r
			switch *sumColumn {
			case "id":
				sent.Checksum += id
			case "amount":
				sent.Checksum += amountOf(id)
			}
		}
	}
	// The call's outcome: the server's final status.
	if err := writer.Close(); err != nil {
		return err
	}
	return printSummary(sent)
}

func amountOf(id int64) int64 { return (id*37)%1001 - 500 }

// makeBatch builds batch b of a put: rows rows with ids b*rows .. b*rows+rows-1.
func makeBatch(builder *array.RecordBuilder, b, rows int64) arrow.RecordBatch {
	ids := builder.Field(0).(*array.Int64Builder)
	amounts := builder.Field(1).(*array.Int64Builder)
	names := builder.Field(2).(*array.StringBuilder)
	builder.Reserve(int(rows))
	for r := int64(0); r < rows; r++ {
		id := b*rows + r
		ids.Append(id)
		amounts.Append(amountOf(id))
		names.Append(fmt.Sprintf("row-%d", id))
	}
	return builder.NewRecordBatch()
}
