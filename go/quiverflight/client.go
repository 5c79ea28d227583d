package quiverflight

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// DefaultMaxMessageSize is the largest gRPC message a [Client] receives and sends unless
// [WithMaxMessageSize] says otherwise: the largest gRPC allows. (grpc-go's own default
// for receiving, 4 MiB, is smaller than many record batches.)
const DefaultMaxMessageSize = math.MaxInt32

// ErrBadAddress is wrapped by the error [Connect] returns for an address it cannot use.
var ErrBadAddress = errors.New("bad address")

// DefaultAddr is where `quiver serve` listens by default: a Unix socket in the user's
// private runtime directory, grpc+unix://$XDG_RUNTIME_DIR/quiver/flight.sock, or
// grpc+unix://$TMPDIR/quiver-UID/flight.sock ($TMPDIR defaulting to /tmp) when
// XDG_RUNTIME_DIR is not an absolute path.
func DefaultAddr() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); strings.HasPrefix(dir, "/") {
		return "grpc+unix://" + dir + "/quiver/flight.sock"
	}
	tmp := os.Getenv("TMPDIR")
	if !strings.HasPrefix(tmp, "/") {
		tmp = "/tmp"
	}
	return fmt.Sprintf("grpc+unix://%s/quiver-%d/flight.sock", tmp, os.Geteuid())
}

// An Option configures [Connect].
type Option func(*options)

type options struct {
	token          string
	tokenFile      string
	tlsRoots       string
	maxMessageSize int
}

// WithToken sends token as a bearer token ("authorization: Bearer TOKEN") on every call.
// `quiver serve` requires one on a TCP listener. An empty token sends none.
func WithToken(token string) Option {
	return func(o *options) { o.token, o.tokenFile = token, "" }
}

// WithTokenFile reads the bearer token from the first line of path when [Connect] runs
// (surrounding white space removed), as `quiver serve --token-file` does. quiver serve
// prints the path of the token file it generates for a TCP listener started without one.
// The last of WithToken and WithTokenFile wins.
func WithTokenFile(path string) Option {
	return func(o *options) { o.tokenFile, o.token = path, "" }
}

// WithTLSRoots verifies the server's certificate against the PEM certificates in pemFile
// instead of the system's roots. It turns TLS on whatever the address's scheme.
func WithTLSRoots(pemFile string) Option {
	return func(o *options) { o.tlsRoots = pemFile }
}

// WithMaxMessageSize sets the largest gRPC message, in bytes, the client receives or sends
// (a record batch travels as one message). The default, n <= 0, is
// [DefaultMaxMessageSize]: the largest gRPC allows.
func WithMaxMessageSize(n int) Option {
	return func(o *options) { o.maxMessageSize = n }
}

// A Client is a connection to one `quiver serve`. It is safe for concurrent use by
// multiple goroutines; Close it when done.
type Client struct {
	fc   flight.Client
	addr string
}

// Connect makes a client of the `quiver serve` at addr:
//
//   - "" (quiver serve's default socket, see [DefaultAddr]);
//   - grpc+unix:///PATH or unix:///PATH: a Unix socket;
//   - HOST:PORT, grpc://HOST:PORT or grpc+tcp://HOST:PORT: plain TCP (quiver serve needs a
//     token there: [WithToken], [WithTokenFile]);
//   - grpc+tls://HOST:PORT: TLS, verified against the system's roots or [WithTLSRoots].
//
// gRPC connects lazily: an unreachable server shows up as codes.Unavailable on the first
// call, not here. Errors here are about the arguments: an unknown scheme (wrapping
// [ErrBadAddress]), an unreadable token or roots file.
func Connect(addr string, opts ...Option) (*Client, error) {
	if addr == "" {
		addr = DefaultAddr()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxMessageSize <= 0 {
		o.maxMessageSize = DefaultMaxMessageSize
	}
	target, useTLS, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}

	token := o.token
	if o.tokenFile != "" {
		text, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token file: %w", err)
		}
		token = strings.TrimSpace(strings.SplitN(string(text), "\n", 2)[0])
		if token == "" {
			return nil, fmt.Errorf("the token file %s holds no token on its first line", o.tokenFile)
		}
	}

	creds := insecure.NewCredentials()
	if useTLS || o.tlsRoots != "" {
		config := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.tlsRoots != "" {
			pem, err := os.ReadFile(o.tlsRoots)
			if err != nil {
				return nil, fmt.Errorf("reading the TLS roots: %w", err)
			}
			config.RootCAs = x509.NewCertPool()
			if !config.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("the TLS roots file %s holds no PEM certificate", o.tlsRoots)
			}
		}
		creds = credentials.NewTLS(config)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.maxMessageSize),
			grpc.MaxCallSendMsgSize(o.maxMessageSize)),
	}
	if token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(token)))
	}
	fc, err := flight.NewClientWithMiddleware(target, nil, nil, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{fc: fc, addr: addr}, nil
}

// parseAddr turns a Flight location into a gRPC target, and says whether it uses TLS.
func parseAddr(addr string) (target string, useTLS bool, err error) {
	target = addr
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
		return "", false, fmt.Errorf("%w %q: the scheme must be grpc+unix://, unix://, grpc://, "+
			"grpc+tcp:// or grpc+tls://", ErrBadAddress, addr)
	}
	if !strings.HasPrefix(target, "unix://") {
		target = strings.TrimSuffix(target, "/")
	}
	if target == "" || target == "unix://" {
		return "", false, fmt.Errorf("%w %q: no host or socket", ErrBadAddress, addr)
	}
	return target, useTLS, nil
}

// bearer sends the token as gRPC metadata on every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: quiver serve takes a token on a Unix socket or a
// loopback TCP listener without TLS (and refuses a non-loopback one without TLS).
func (b bearer) RequireTransportSecurity() bool { return false }

// Addr is the address the client was made for (quiver serve's default socket for "").
func (c *Client) Addr() string { return c.addr }

// FlightClient is the underlying Arrow Flight client, for calls this package does not
// wrap (DoAction, GetFlightInfo, ...). It sends the client's token too.
func (c *Client) FlightClient() flight.Client { return c.fc }

// Close closes the connection. Streams and writers still open fail.
func (c *Client) Close() error { return c.fc.Close() }

// A Flight is one entry of [Client.List]: an Arrow channel or a compute service.
type Flight struct {
	// Name is the channel's name, or the service's.
	Name string
	// Service is true for a compute service (run it with [Client.Call]), false for a
	// channel (read it with [Client.Tail], write it with [Client.Put]).
	Service bool
	// Schema is the channel's schema, or the schema of the service's results; nil when the
	// server's could not be read (SchemaErr says why).
	Schema *arrow.Schema
	// SchemaErr is why Schema is nil.
	SchemaErr error
	// Metadata is the flight's app_metadata when it is JSON: a channel's counters
	// ({"published": N, "subscribers": [...], ...}, the shape of `quiver ls --json`), a
	// service's {"service": NAME, "description": TEXT}. Nil otherwise.
	Metadata json.RawMessage
	// Description is a service's description (from Metadata); empty for a channel.
	Description string
	// Info is the FlightInfo as the server sent it.
	Info *flight.FlightInfo
}

// List returns the server's flights: its user's Arrow channels (including those of running
// pipelines) and compute services, in the server's order.
func (c *Client) List(ctx context.Context) ([]Flight, error) {
	stream, err := c.fc.ListFlights(ctx, &flight.Criteria{})
	if err != nil {
		return nil, err
	}
	var flights []Flight
	for {
		info, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return flights, nil
		}
		if err != nil {
			return nil, err
		}
		flights = append(flights, flightOf(info))
	}
}

func flightOf(info *flight.FlightInfo) Flight {
	f := Flight{Info: info}
	descriptor := info.GetFlightDescriptor()
	if descriptor.GetType() == flight.DescriptorCMD {
		var cmd struct {
			Service *string `json:"service"`
		}
		if json.Unmarshal(descriptor.GetCmd(), &cmd) == nil && cmd.Service != nil {
			f.Name, f.Service = *cmd.Service, true
		} else {
			f.Name = string(descriptor.GetCmd())
		}
	} else {
		f.Name = strings.Join(descriptor.GetPath(), "/")
	}
	if schema, err := flight.DeserializeSchema(info.GetSchema(), memory.DefaultAllocator); err == nil {
		f.Schema = schema
	} else {
		f.SchemaErr = err
	}
	if meta := info.GetAppMetadata(); len(meta) > 0 && json.Valid(meta) {
		f.Metadata = json.RawMessage(meta)
		if f.Service {
			var described struct {
				Description string `json:"description"`
			}
			if json.Unmarshal(meta, &described) == nil {
				f.Description = described.Description
			}
		}
	}
	return f
}

// Describe turns an error of this package into a message that says what to do, for the
// server at addr: "cannot reach the server at ADDR (is `quiver serve` running?): ...",
// "authentication failed (check the token): ...", "not found: ...", "invalid argument: ...",
// and so on. A [ShardError] is described as "shard N: " and its error, for its own
// address. An error without a gRPC status is returned as its text.
func Describe(err error, addr string) string {
	var shardErr *ShardError
	if errors.As(err, &shardErr) {
		if shardErr.Addr != "" {
			addr = shardErr.Addr
		}
		return fmt.Sprintf("shard %d: %s", shardErr.Shard, Describe(shardErr.Err, addr))
	}
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		switch msg := st.Message(); {
		case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:"):
			return fmt.Sprintf("TLS with %s failed (is its certificate signed by the TLS roots given?): %s", addr, msg)
		case strings.Contains(msg, "server preface"):
			return fmt.Sprintf("%s did not answer plain gRPC (does it serve TLS? then use grpc+tls://): %s", addr, msg)
		case !transportFailure(msg):
			// quiver serve's own UNAVAILABLE: a compute service's worker died, a channel's
			// publisher role is taken, the server is shutting down, ...
			return fmt.Sprintf("unavailable: %s", msg)
		}
		return fmt.Sprintf("cannot reach the server at %s (is `quiver serve` running?): %s", addr, st.Message())
	case codes.Unauthenticated:
		return fmt.Sprintf("authentication failed (check the token): %s", st.Message())
	case codes.PermissionDenied:
		return fmt.Sprintf("permission denied: %s", st.Message())
	case codes.NotFound:
		return fmt.Sprintf("not found: %s", st.Message())
	case codes.InvalidArgument:
		return fmt.Sprintf("invalid argument: %s", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Sprintf("timed out: %s", st.Message())
	case codes.ResourceExhausted:
		return fmt.Sprintf("too large (a message over the client's WithMaxMessageSize, or the "+
			"server's --max-message-size?): %s", st.Message())
	default:
		return fmt.Sprintf("%s: %s", st.Code(), st.Message())
	}
}

// transportFailure: an UNAVAILABLE message of grpc-go's own (the connection failed or
// broke), as opposed to one the server sent.
func transportFailure(msg string) bool {
	for _, marker := range []string{"connection error", "name resolver", "produced zero addresses",
		"error reading from server", "transport is closing", "transport:", "dial ", "connect:",
		"connection closed", "connection reset", "connection refused"} {
		if strings.Contains(msg, marker) {
			return true
		}
	}
	return false
}
