// Command flightclient reads and writes Quiver channels over Arrow Flight, from Go.
//
// `quiver serve` exposes every Arrow channel of a machine as one flight (descriptor path
// [NAME], ticket "NAME"). This client uses Apache Arrow's Go Flight client to
//
//	flightclient list                          # the flights and their counters (quiver serve's default socket)
//	flightclient get -channel ledger -batches 10
//	flightclient -addr 127.0.0.1:50051 -token-file TOKEN put -channel ledger -batches 10 -rows 1000
//
// `get` and `put` print one JSON line, {"batches":B,"rows":R,"checksum":C}, where C is the
// sum of the int64 column named by -sum-column ("amount" by default) over every row
// received or sent (nulls count as 0; -sum-column "" turns the sum off). A producer that
// knows what it published can compare.
//
// `put` sends batches of a fixed schema, {id int64, amount int64, name utf8} (all nullable),
// with, for the batch b (from 0) and its row r (from 0) of a put of R rows per batch:
//
//	id = b*R + r,  amount = (id*37) % 1001 - 500,  name = "row-<id>"
//
// Errors (the server is unreachable, the channel is unknown, the token is refused, ...)
// are printed on stderr and exit with code 1; bad usage exits with code 2.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const usage = `usage: flightclient [-addr ADDRESS] [-token-file F] [-tls-ca FILE] [-timeout D] COMMAND [flags]

commands:
  list [-json]                              the flights (one per Arrow channel): name, schema, counters
  get  -channel NAME [-batches N]           DoGet: a live tail of the channel; N batches, then cancel
       [-sum-column COL]                    (N=0: until the channel's publisher is gone)
  put  -channel NAME [-batches N] [-rows R] DoPut: N batches of R rows of {id, amount, name}
       [-sum-column COL]

get and put print {"batches":B,"rows":R,"checksum":C}: C is the sum of the int64 column COL
("amount" by default). -addr is quiver serve's default Unix socket unless given:
grpc+unix:///PATH, HOST:PORT, grpc://HOST:PORT or grpc+tls://HOST:PORT (TCP needs the token).

global flags:
`

// summary is what get and put print.
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
	addr := global.String("addr", defaultAddr(), "the server: grpc+unix:///SOCKET (quiver serve's default, only this user), HOST:PORT, grpc://HOST:PORT or grpc+tls://HOST:PORT")
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

	// Ctrl-C (or SIGTERM) ends the command; get then prints what it received so far.
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
	default:
		fmt.Fprintf(os.Stderr, "flightclient: unknown command %q (list, get or put)\n", command)
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
		fmt.Fprintf(os.Stderr, "flightclient %s: %v\n", command, describe(err, *addr))
		os.Exit(1)
	}
}

type usageError struct{ error }

// errFlagsPrinted: the flag package has already printed the error and the usage.
var errFlagsPrinted = usageError{errors.New("bad flags")}

func subcommandFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("flightclient "+name, flag.ContinueOnError)
}

// defaultAddr is where `quiver serve` listens by default: a Unix socket in the user's private
// runtime directory ($XDG_RUNTIME_DIR/quiver, else /tmp/quiver-UID; quiver's DefaultListen).
func defaultAddr() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); strings.HasPrefix(dir, "/") {
		return "grpc+unix://" + dir + "/quiver/flight.sock"
	}
	tmp := os.Getenv("TMPDIR")
	if !strings.HasPrefix(tmp, "/") {
		tmp = "/tmp"
	}
	return fmt.Sprintf("grpc+unix://%s/quiver-%d/flight.sock", tmp, os.Geteuid())
}

// connect opens a client; gRPC connects lazily, so an unreachable server shows up as
// codes.Unavailable on the first call.
func connect(addr, token, tlsCA string) (flight.Client, func(context.Context) context.Context, error) {
	target, useTLS := addr, false
	switch {
	case strings.HasPrefix(addr, "grpc+unix://"): // grpc-go's own spelling is unix:///PATH
		target = "unix://" + strings.TrimPrefix(addr, "grpc+unix://")
	case strings.HasPrefix(addr, "unix://"):
	case strings.HasPrefix(addr, "grpc+tls://"):
		target, useTLS = strings.TrimPrefix(addr, "grpc+tls://"), true
	case strings.HasPrefix(addr, "grpc+tcp://"):
		target = strings.TrimPrefix(addr, "grpc+tcp://")
	case strings.HasPrefix(addr, "grpc://"):
		target = strings.TrimPrefix(addr, "grpc://")
	case strings.Contains(addr, "://"):
		return nil, nil, usageError{fmt.Errorf("-addr %q: the scheme must be grpc+unix://, grpc://, grpc+tcp:// or grpc+tls://", addr)}
	}
	if !strings.HasPrefix(target, "unix://") {
		target = strings.TrimSuffix(target, "/")
	}

	creds := insecure.NewCredentials()
	if useTLS || tlsCA != "" {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsCA != "" {
			pem, err := os.ReadFile(tlsCA)
			if err != nil {
				return nil, nil, fmt.Errorf("reading -tls-ca: %w", err)
			}
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("-tls-ca %s holds no PEM certificate", tlsCA)
			}
		}
		creds = credentials.NewTLS(config)
	}
	client, err := flight.NewClientWithMiddleware(target, nil, nil, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, nil, err
	}
	// The token travels as gRPC metadata on every call.
	withAuth := func(ctx context.Context) context.Context {
		if token == "" {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return client, withAuth, nil
}

// describe turns a gRPC status into a message that says what to do.
func describe(err error, addr string) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		switch msg := st.Message(); {
		case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
			return fmt.Sprintf("TLS with %s failed (is its certificate signed by -tls-ca?): %s", addr, msg)
		case strings.Contains(msg, "server preface"):
			return fmt.Sprintf("%s did not answer plain gRPC (does it serve TLS? then use grpc+tls://): %s", addr, msg)
		}
		return fmt.Sprintf("cannot reach the server at %s (is `quiver serve` running?): %s", addr, st.Message())
	case codes.Unauthenticated:
		return fmt.Sprintf("authentication failed (check -token): %s", st.Message())
	case codes.PermissionDenied:
		return fmt.Sprintf("permission denied: %s", st.Message())
	case codes.NotFound:
		return fmt.Sprintf("not found: %s", st.Message())
	case codes.InvalidArgument:
		return fmt.Sprintf("invalid argument: %s", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Sprintf("timed out (-timeout): %s", st.Message())
	default:
		return fmt.Sprintf("%s: %s", st.Code(), st.Message())
	}
}

// ---- list ----------------------------------------------------------------------------

type listedFlight struct {
	Name     string          `json:"name"`
	Schema   []string        `json:"schema"`
	Counters json.RawMessage `json:"counters,omitempty"`
}

func runList(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("list")
	asJSON := fs.Bool("json", false, "one JSON object per flight: {\"name\", \"schema\", \"counters\"}")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	client, withAuth, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	stream, err := client.ListFlights(withAuth(ctx), &flight.Criteria{})
	if err != nil {
		return err
	}
	count := 0
	for {
		info, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		count++
		entry := listedFlight{Name: strings.Join(info.GetFlightDescriptor().GetPath(), "/")}
		if schema, err := flight.DeserializeSchema(info.GetSchema(), memory.DefaultAllocator); err == nil {
			for _, f := range schema.Fields() {
				entry.Schema = append(entry.Schema, f.Name+": "+f.Type.String())
			}
		} else {
			entry.Schema = []string{"(unreadable schema: " + err.Error() + ")"}
		}
		if meta := info.GetAppMetadata(); json.Valid(meta) {
			entry.Counters = meta
		}
		if *asJSON {
			line, _ := json.Marshal(entry)
			fmt.Println(string(line))
			continue
		}
		fmt.Println(entry.Name)
		fmt.Printf("  schema:   %s\n", strings.Join(entry.Schema, ", "))
		if entry.Counters != nil {
			fmt.Printf("  counters: %s\n", compactJSON(entry.Counters))
		}
	}
	if count == 0 && !*asJSON {
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

// ---- get ------------------------------------------------------------------------------

func runGet(ctx context.Context, addr, token, tlsCA string, args []string) error {
	fs := subcommandFlags("get")
	channel := fs.String("channel", "", "the channel (required)")
	batches := fs.Int64("batches", 0, "stop after this many batches (0: until the publisher is gone)")
	sumColumn := fs.String("sum-column", "amount", "the int64 column summed into checksum (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return errFlagsPrinted
	}
	if *channel == "" || *batches < 0 {
		return usageError{errors.New("-channel NAME is required and -batches must be >= 0")}
	}
	client, withAuth, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	// The flight's endpoint carries the ticket; asking for it first also makes an unknown
	// channel a clear NotFound.
	info, err := client.GetFlightInfo(withAuth(ctx), &flight.FlightDescriptor{
		Type: flight.DescriptorPATH, Path: []string{*channel}})
	if err != nil {
		return err
	}
	if len(info.GetEndpoint()) == 0 || info.GetEndpoint()[0].GetTicket() == nil {
		return fmt.Errorf("the flight of %q has no endpoint with a ticket", *channel)
	}
	ticket := info.GetEndpoint()[0].GetTicket()

	// Cancelling this context ends the live tail: the server sees the call cancelled.
	tailCtx, cancelTail := context.WithCancel(withAuth(ctx))
	defer cancelTail()
	stream, err := client.DoGet(tailCtx, ticket)
	if err != nil {
		return err
	}
	reader, err := flight.NewRecordReader(stream) // reads the schema message
	if err != nil {
		return interrupted(ctx, err, summary{})
	}
	defer reader.Release()

	column := -1
	if *sumColumn != "" {
		indices := reader.Schema().FieldIndices(*sumColumn)
		if len(indices) == 0 || reader.Schema().Field(indices[0]).Type.ID() != arrow.INT64 {
			return fmt.Errorf("channel %q has no int64 column %q (pick one with -sum-column, or -sum-column \"\")",
				*channel, *sumColumn)
		}
		column = indices[0]
	}

	var got summary
	for *batches == 0 || got.Batches < *batches {
		if !reader.Next() {
			if err := reader.Err(); err != nil && !errors.Is(err, io.EOF) {
				return interrupted(ctx, err, got)
			}
			break // EOS: the channel's publisher is gone
		}
		batch := reader.RecordBatch()
		got.Batches++
		got.Rows += batch.NumRows()
		if column >= 0 {
			got.Checksum += sumInt64(batch.Column(column).(*array.Int64))
		}
	}
	cancelTail() // enough: end the live tail
	return printSummary(got)
}

// interrupted prints what a get received when Ctrl-C or -timeout ended it; other errors pass.
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
	client, withAuth, err := connect(addr, token, tlsCA)
	if err != nil {
		return err
	}
	defer client.Close()

	stream, err := client.DoPut(withAuth(ctx))
	if err != nil {
		return err
	}
	writer := flight.NewRecordWriter(stream, ipc.WithSchema(putSchema))
	writer.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{*channel}})

	builder := array.NewRecordBuilder(memory.DefaultAllocator, putSchema)
	defer builder.Release()
	var sent summary
	for b := int64(0); b < *batches; b++ {
		batch := makeBatch(builder, b, *rows)
		err := writer.Write(batch)
		batch.Release()
		if err != nil {
			// The server ended the call (a schema mismatch, say): its status says why.
			return putStatus(stream, err)
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
	if err := writer.Close(); err != nil { // writes the schema if no batch was sent
		return putStatus(stream, err)
	}
	if err := stream.CloseSend(); err != nil {
		return putStatus(stream, err)
	}
	// The call's outcome: the server's PutResults (ignored), then its status.
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
	}
	return printSummary(sent)
}

// putStatus returns the status the server ended a DoPut with (a failed Send only says EOF).
func putStatus(stream flight.FlightService_DoPutClient, sendErr error) error {
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return sendErr
			}
			return err
		}
	}
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
