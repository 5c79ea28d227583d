package quiverflight_test

// These tests run against a real `quiver serve` (and `quiver run`), with Python processes
// publishing, subscribing and serving compute services on the other side:
//
//	QUIVER_BUILD_DIR  the directory holding the quiver binary (default: ../../build)
//	QUIVER_PYTHON     a Python with quiver and pyarrow (default: ../../.venv/bin/python)
//
// Each test is skipped, saying why, when either is missing. Every process a test starts
// carries QF_TEST_MARK=<the test's token> in its environment (inherited by the nodes of a
// pipeline), and every channel and service name contains that token. Its processes also
// get a channel directory of the test's own (QUIVER_SHM_DIR=/dev/shm/qf-XXXX), so that
// what they leave there (a compute call's result channel is named call-UUID) is the
// test's. At its end a test checks that none of its processes and none of its segments
// are left (and removes its channel directory).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"quiver.dev/go/quiverflight"
)

// helperPy is the Python side of the tests; its first argument is the mode:
//
//	publish NAME BATCHES ROWS BACKLOG  creates NAME, publishes BACKLOG batches (kept by a
//	                                   subscriber of its own), prints "ready", waits for a
//	                                   new subscriber (the DoGet), publishes the rest,
//	                                   prints the summary of all and exits
//	subscribe NAME BATCHES             creates NAME, subscribes, prints "ready", receives
//	                                   BATCHES and prints their summary
//	float NAME                         creates NAME of schema {amount: float64}, prints
//	                                   "ready", and at the end of stdin its published count
//	serve NAME stdin|signal            serves the compute service NAME until stdin ends
//	                                   (stdin) or SIGINT/SIGTERM (signal; under quiver run)
//
// Batch b of R rows holds ids BASE + b*R + r (BASE: $QF_SHARD * 1e9 for a service, else 0)
// and amount = (id*37) % 1001 - 500. A summary is {"batches", "rows", "checksum"}, the
// checksum the sum of amount.
const helperPy = `
import gc, json, os, signal, sys, threading, time
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import quiver, quiver.control

SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.int64())])

def ledger(first, rows):
    ids = np.arange(first, first + rows, dtype=np.int64)
    return pa.record_batch([pa.array(ids), pa.array((ids * 37) % 1001 - 500)], schema=SCHEMA)

def summary(batches):
    return {"batches": len(batches), "rows": sum(b.num_rows for b in batches),
            "checksum": sum(pc.sum(b["amount"]).as_py() or 0 for b in batches)}

def live_subscribers(channel):
    return sum(1 for s in channel.stats()["subscribers"] if s["alive"])

def wait_until(condition, what):
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.01)

def close_last():
    """Drops this process's handles once the server let go of the channel: the last holder
    to close a channel removes its name, but two holders closing at the same moment may
    each still see the other and both leave it (a race of Quiver's own), so the closes
    are ordered."""
    time.sleep(0.2)  # the server closes its handle shortly after its call ended
    gc.collect()

mode, name = sys.argv[1], sys.argv[2]
if mode == "publish":
    count, rows, backlog = map(int, sys.argv[3:6])
    channel = quiver.Channel.create(name, "64MiB", schema=SCHEMA)
    keeper = channel.subscriber() if backlog else None  # holds the backlog
    publisher = channel.publisher()
    batches = [ledger(b * rows, rows) for b in range(count)]
    for batch in batches[:backlog]:
        publisher.publish(batch)
    print("ready", flush=True)
    wait_until(lambda: live_subscribers(channel) == (2 if keeper else 1), "the DoGet to attach")
    for batch in batches[backlog:]:
        publisher.publish(batch)
    print(json.dumps(summary(batches)), flush=True)
    # The publisher goes away: the tail ends after the last batch, and the server's
    # subscriber detaches (as it does when the client cancels).
    batches = batch = publisher = None
    gc.collect()
    wait_until(lambda: live_subscribers(channel) == (1 if keeper else 0), "the DoGet to detach")
    keeper = channel = None
    close_last()
elif mode == "subscribe":
    count = int(sys.argv[3])
    channel = quiver.Channel.create(name, "8MiB", schema=SCHEMA)
    subscriber = channel.subscriber()
    print("ready", flush=True)
    batches = [subscriber.receive(timeout=30).to_arrow() for _ in range(count)]
    out = summary(batches)
    ids = [i for b in batches for i in b["id"].to_pylist()]
    out["in_order"] = ids == list(range(len(ids)))
    try:
        subscriber.receive(timeout=0.3)
        out["more"] = True
    except (quiver.Timeout, quiver.PeerGone):
        out["more"] = False
    wait_until(lambda: not channel.stats()["publisher_alive"], "the DoPut to end")
    print(json.dumps(out), flush=True)
    batches = subscriber = channel = None
    close_last()
elif mode == "float":
    channel = quiver.Channel.create(name, "1MiB", schema=pa.schema([("amount", pa.float64())]))
    print("ready", flush=True)
    sys.stdin.read()
    print(json.dumps({"published": channel.stats()["published"]}), flush=True)
    channel = None
    close_last()
elif mode == "serve":
    shard = int(os.environ.get("QF_SHARD", "0"))

    def handler(request):
        if "fail" in request:
            raise ValueError(request["fail"])
        if request.get("fail_shard") == shard:
            raise ValueError(f"shard {shard} refuses this request")
        rows = request.get("rows", 100)
        for b in range(request.get("batches", 1)):
            yield ledger(shard * 10**9 + b * rows, rows)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    service = quiver.control.Service(name, handler, SCHEMA, description="ledger rows for tests")
    service.start()
    print("serving", flush=True)
    if sys.argv[3] == "stdin":
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.wait(0.1):
        pass
    service.close()
`

// ---- the environment -------------------------------------------------------------------

var (
	toolsOnce            sync.Once
	quiverBin, pythonBin string
	toolsSkip            string
)

// ledgerSchema is the helper's SCHEMA.
var ledgerSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// shardBase: the ids of shard i's results start at i * shardBase.
const shardBase int64 = 1_000_000_000

// tools finds quiver and Python, or skips the test saying what is missing.
func tools(t *testing.T) (quiver, python string) {
	t.Helper()
	toolsOnce.Do(func() {
		build := os.Getenv("QUIVER_BUILD_DIR")
		if build == "" {
			build, _ = filepath.Abs("../../build")
		}
		quiverBin = filepath.Join(build, "quiver")
		if info, err := os.Stat(quiverBin); err != nil || info.Mode()&0o111 == 0 {
			toolsSkip = fmt.Sprintf("no quiver binary at %s: build it (make build) or set "+
				"QUIVER_BUILD_DIR to the directory holding it", quiverBin)
			return
		}
		pythonBin = os.Getenv("QUIVER_PYTHON")
		if pythonBin == "" {
			pythonBin, _ = filepath.Abs("../../.venv/bin/python")
		}
		check := exec.Command(pythonBin, "-c", "import quiver, quiver.control, pyarrow, numpy")
		if out, err := check.CombinedOutput(); err != nil {
			toolsSkip = fmt.Sprintf("%s cannot import quiver and pyarrow (%v: %s): set "+
				"QUIVER_PYTHON to a Python that can", pythonBin, err, bytes.TrimSpace(out))
		}
	})
	if toolsSkip != "" {
		t.Skip(toolsSkip)
	}
	return quiverBin, pythonBin
}

// harness is one test's world: a unique token, a private runtime directory (the
// XDG_RUNTIME_DIR of its processes, where services and the server's socket live), a
// private channel directory (their QUIVER_SHM_DIR) and the helper script.
type harness struct {
	t       *testing.T
	quiver  string
	python  string
	token   string
	runtime string
	shmRoot string
	helper  string
	ctx     context.Context
}

func newHarness(t *testing.T) *harness {
	quiver, python := tools(t)
	h := &harness{t: t, quiver: quiver, python: python,
		token: fmt.Sprintf("qf%d-%08x", os.Getpid(), rand.Uint32())}
	// Registered first, so run last: after every process of the test has been stopped.
	t.Cleanup(h.checkNothingLeft)
	h.runtime = h.privateDir()
	shmParent := "/dev/shm"
	if _, err := os.Stat(shmParent); err != nil {
		shmParent = ""
	}
	shmRoot, err := os.MkdirTemp(shmParent, "qf-")
	if err != nil {
		t.Fatal(err)
	}
	h.shmRoot = shmRoot
	h.helper = filepath.Join(h.runtime, "helper.py")
	if err := os.WriteFile(h.helper, []byte(helperPy), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	h.ctx = ctx
	return h
}

// name is a channel or service name unique to this test.
func (h *harness) name(what string) string { return h.token + "-" + what }

// privateDir is a fresh 0700 directory, short enough for a Unix socket path, removed at
// the end of the test.
func (h *harness) privateDir() string {
	dir, err := os.MkdirTemp("", "qf-")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// env is the environment of a process of this test, with runtime as its XDG_RUNTIME_DIR.
func (h *harness) env(runtime string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") && !strings.HasPrefix(kv, "QUIVER_SHM_DIR=") &&
			!strings.HasPrefix(kv, "QF_") {
			env = append(env, kv)
		}
	}
	return append(append(env, "XDG_RUNTIME_DIR="+runtime, "QUIVER_SHM_DIR="+h.shmRoot,
		"QF_TEST_MARK="+h.token), extra...)
}

// checkNothingLeft fails the test if a process it started or a segment it named is left.
func (h *harness) checkNothingLeft() {
	t := h.t
	deadline := time.Now().Add(10 * time.Second)
	procs, segments := h.leftovers()
	for (len(procs) > 0 || len(segments) > 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		procs, segments = h.leftovers()
	}
	for _, pid := range procs {
		t.Errorf("process %d of this test is still running (killed now): %s", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, path := range segments {
		t.Errorf("segment left behind (removed now): %s", path)
		os.Remove(path)
	}
	if h.shmRoot != "" {
		os.RemoveAll(h.shmRoot)
	}
}

func (h *harness) leftovers() (procs []int, segments []string) {
	entries, _ := os.ReadDir("/proc")
	mark := []byte("QF_TEST_MARK=" + h.token + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(environ, mark) {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
				continue // a zombie its parent (one of ours, ending) has yet to reap
			}
		}
		procs = append(procs, pid)
	}
	// Everything in the test's own channel directory, and (should something not heed
	// QUIVER_SHM_DIR) whatever bears its token in the default one.
	userDir := fmt.Sprintf("quiver-%d", os.Geteuid())
	if h.shmRoot != "" {
		mine, _ := os.ReadDir(filepath.Join(h.shmRoot, userDir))
		for _, f := range mine {
			segments = append(segments, filepath.Join(h.shmRoot, userDir, f.Name()))
		}
	}
	defaultDir := os.Getenv("QUIVER_SHM_DIR")
	if defaultDir == "" {
		defaultDir = "/dev/shm"
	}
	others, _ := os.ReadDir(filepath.Join(defaultDir, userDir))
	for _, f := range others {
		if strings.Contains(f.Name(), h.token) {
			segments = append(segments, filepath.Join(defaultDir, userDir, f.Name()))
		}
	}
	return procs, segments
}

func cmdline(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}

// proc is a process of the test, stopped at its end (closing its stdin, then SIGTERM,
// then SIGKILL of its process group).
type proc struct {
	t      *testing.T
	what   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	mu     sync.Mutex
	output bytes.Buffer // stdout and stderr, for failure messages
	exited chan struct{}
	// signalOnly: the process does not read stdin; stop it with SIGTERM at once.
	signalOnly bool
}

func (h *harness) start(what string, env []string, dir string, signalOnly bool, argv ...string) *proc {
	t := h.t
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, dir
	// Its own process group (the last resort kills the group), and SIGTERM should the test
	// binary die without its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	p := &proc{t: t, what: what, cmd: cmd, lines: make(chan string, 1000),
		exited: make(chan struct{}), signalOnly: signalOnly}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// stdout is a pipe of our own, read apart from Wait: the process's exit is known even
	// if something it started kept the pipe open.
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdoutW
	cmd.Stderr = (*lockedWriter)(p)
	cmd.WaitDelay = 5 * time.Second // for the copy of stderr, likewise
	p.stdin = stdin
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		stdout.Close()
		t.Fatalf("starting %s: %v", what, err)
	}
	go func() {
		defer stdout.Close()
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(make([]byte, 64*1024), 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			(*lockedWriter)(p).Write([]byte(line + "\n"))
			p.lines <- line
		}
		close(p.lines)
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

type lockedWriter proc

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.output.Write(b)
}

func (p *proc) transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// line is the next line of the process's stdout; the test fails if none comes in time.
func (p *proc) line(timeout time.Duration) string {
	p.t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.wait(5 * time.Second)
			p.t.Fatalf("%s ended (%v) before printing a line:\n%s", p.what, p.cmd.ProcessState, p.transcript())
		}
		return line
	case <-time.After(timeout):
		p.t.Fatalf("%s printed no line within %s:\n%s", p.what, timeout, p.transcript())
	}
	return ""
}

// jsonLine decodes the next line of stdout into v.
func (p *proc) jsonLine(v any) {
	p.t.Helper()
	line := p.line(30 * time.Second)
	if err := json.Unmarshal([]byte(line), v); err != nil {
		p.t.Fatalf("%s printed %q, not JSON: %v\n%s", p.what, line, err, p.transcript())
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// stop ends the process: stdin closed (a helper then ends by itself), SIGTERM, and after
// 15 s SIGKILL of its process group.
func (p *proc) stop() {
	p.stdin.Close()
	if !p.signalOnly && p.wait(10*time.Second) {
		return
	}
	if p.running() {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	if !p.wait(15 * time.Second) {
		p.t.Errorf("%s did not stop within 15 s of SIGTERM: killed", p.what)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// startServe starts `quiver serve` listening on a socket in runtime (or on listen).
func (h *harness) startServe(runtime, listen string, args ...string) (*proc, string) {
	if listen == "" {
		listen = "grpc+unix://" + runtime + "/flight.sock"
	}
	p := h.start("quiver serve", h.env(runtime), runtime, true,
		append([]string{h.quiver, "serve", "--listen", listen}, args...)...)
	line := p.line(30 * time.Second)
	_, location, ok := strings.Cut(line, "listening on ")
	if !ok {
		h.t.Fatalf("quiver serve said %q, not where it listens:\n%s", line, p.transcript())
	}
	location = strings.Fields(location)[0]
	h.t.Cleanup(func() { // runs before p.stop (cleanups run last first): check its exit then
		p.stop()
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			h.t.Errorf("quiver serve exited %d after SIGTERM:\n%s", code, p.transcript())
		}
	})
	return p, location
}

// helperProc starts the helper script in the given mode, waits for its first line and checks
// it is want.
func (h *harness) helperProc(runtime, want string, args ...string) *proc {
	p := h.start("python "+strings.Join(args, " "), h.env(runtime), runtime, false,
		append([]string{h.python, h.helper}, args...)...)
	if line := p.line(30 * time.Second); line != want {
		h.t.Fatalf("%s printed %q, not %q:\n%s", p.what, line, want, p.transcript())
	}
	return p
}

func (h *harness) connect(location string, opts ...quiverflight.Option) *quiverflight.Client {
	client, err := quiverflight.Connect(location, opts...)
	if err != nil {
		h.t.Fatalf("Connect(%q): %v", location, err)
	}
	h.t.Cleanup(func() { client.Close() })
	return client
}

// ---- what the tests compare ------------------------------------------------------------

type summary struct {
	Batches  int64 `json:"batches"`
	Rows     int64 `json:"rows"`
	Checksum int64 `json:"checksum"`
}

func (s *summary) add(batch arrow.RecordBatch) {
	s.Batches++
	s.Rows += batch.NumRows()
	s.Checksum += sumColumn(batch, "amount")
}

func (s summary) plus(o summary) summary {
	return summary{s.Batches + o.Batches, s.Rows + o.Rows, s.Checksum + o.Checksum}
}

func amountOf(id int64) int64 { return (id*37)%1001 - 500 }

// expected is the summary of batches batches of rows rows, ids from base.
func expected(base, batches, rows int64) summary {
	s := summary{Batches: batches, Rows: batches * rows}
	for id := base; id < base+batches*rows; id++ {
		s.Checksum += amountOf(id)
	}
	return s
}

func sumColumn(batch arrow.RecordBatch, name string) int64 {
	indices := batch.Schema().FieldIndices(name)
	if len(indices) == 0 {
		return 0
	}
	values := batch.Column(indices[0]).(*array.Int64)
	var sum int64
	for i := 0; i < values.Len(); i++ {
		if values.IsValid(i) {
			sum += values.Value(i)
		}
	}
	return sum
}

// drain reads a stream to its end (closing it).
func drain(t *testing.T, stream *quiverflight.Stream) (summary, error) {
	t.Helper()
	defer stream.Close()
	var got summary
	for stream.Next() {
		got.add(stream.RecordBatch())
	}
	return got, stream.Err()
}

// call runs a Call to its end; an error may come from Call or from the stream.
func call(t *testing.T, ctx context.Context, client *quiverflight.Client, service string, request any) (summary, error) {
	t.Helper()
	stream, err := client.Call(ctx, service, request)
	if err != nil {
		return summary{}, err
	}
	return drain(t, stream)
}

func ledgerBatch(first, rows int64) arrow.RecordBatch {
	builder := array.NewRecordBuilder(memory.DefaultAllocator, ledgerSchema)
	defer builder.Release()
	ids := builder.Field(0).(*array.Int64Builder)
	amounts := builder.Field(1).(*array.Int64Builder)
	for id := first; id < first+rows; id++ {
		ids.Append(id)
		amounts.Append(amountOf(id))
	}
	return builder.NewRecordBatch()
}

func requireCode(t *testing.T, err error, want codes.Code, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", want)
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != want {
		t.Fatalf("error %v: code %s, want %s", err, status.Code(err), want)
	}
	if !strings.Contains(st.Message(), contains) {
		t.Fatalf("error message %q does not contain %q", st.Message(), contains)
	}
}

// ---- the tests -------------------------------------------------------------------------

func TestTail(t *testing.T) {
	h := newHarness(t)
	_, location := h.startServe(h.runtime, "")
	client := h.connect(location)

	t.Run("live", func(t *testing.T) {
		name := h.name("live")
		py := h.helperProc(h.runtime, "ready", "publish", name, "5", "1000", "0")
		stream, err := client.Tail(h.ctx, name, false)
		if err != nil {
			t.Fatalf("Tail: %v", err)
		}
		defer stream.Close()
		if !stream.Schema().Equal(ledgerSchema) {
			t.Errorf("schema %s, want %s", stream.Schema(), ledgerSchema)
		}

		// Listed while the tail is attached: its schema and counters. (Under heavy load
		// quiver serve's ListFlights was seen to leave a live channel out, rarely: it skips
		// a channel it fails to open or describe, without saying why. Asked again, it
		// lists it.)
		var listed *quiverflight.Flight
		for attempt := 1; listed == nil; attempt++ {
			flights, err := client.List(h.ctx)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			for i := range flights {
				if flights[i].Name == name {
					listed = &flights[i]
				}
			}
			if listed == nil && attempt == 20 {
				t.Fatalf("List has no %s, 20 times: %+v", name, flights)
			} else if listed == nil {
				t.Logf("List attempt %d has no %s: %+v", attempt, name, flights)
				time.Sleep(50 * time.Millisecond)
			}
		}
		var counters struct {
			Published   *int64 `json:"published"`
			Subscribers []any  `json:"subscribers"`
		}
		if listed.Service || listed.Schema == nil || !listed.Schema.Equal(ledgerSchema) ||
			json.Unmarshal(listed.Metadata, &counters) != nil || counters.Published == nil {
			t.Errorf("listed as %+v (metadata %s)", *listed, listed.Metadata)
		}

		got, err := drain(t, stream) // ends when the Python publisher exits
		if err != nil {
			t.Fatalf("the tail ended with %v", err)
		}
		var published summary
		py.jsonLine(&published)
		if want := expected(0, 5, 1000); got != want || published != want {
			t.Errorf("received %+v, Python published %+v, want %+v", got, published, want)
		}
	})

	t.Run("from-oldest", func(t *testing.T) {
		name := h.name("oldest")
		// 2 batches published before the tail attaches (kept by Python's own subscriber),
		// 3 after.
		py := h.helperProc(h.runtime, "ready", "publish", name, "5", "100", "2")
		stream, err := client.Tail(h.ctx, name, true)
		if err != nil {
			t.Fatalf("Tail: %v", err)
		}
		defer stream.Close()
		var ids []int64
		for stream.Next() {
			ids = append(ids, stream.RecordBatch().Column(0).(*array.Int64).Int64Values()...)
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("the tail ended with %v", err)
		}
		var published summary
		py.jsonLine(&published)
		if len(ids) != 500 || ids[0] != 0 || ids[499] != 499 {
			t.Fatalf("received %d ids (%v...), want 0..499: the backlog first", len(ids), ids[:min(len(ids), 3)])
		}
	})

	t.Run("unknown-channel", func(t *testing.T) {
		_, err := client.Tail(h.ctx, h.name("nobody"), false)
		requireCode(t, err, codes.NotFound, h.name("nobody"))
		if d := quiverflight.Describe(err, location); !strings.HasPrefix(d, "not found: ") {
			t.Errorf("Describe: %q", d)
		}
	})

	t.Run("cancelled-by-close", func(t *testing.T) {
		name := h.name("closed")
		py := h.helperProc(h.runtime, "ready", "publish", name, "3", "10", "0")
		stream, err := client.Tail(h.ctx, name, false)
		if err != nil {
			t.Fatalf("Tail: %v", err)
		}
		if !stream.Next() {
			t.Fatalf("no first batch: %v", stream.Err())
		}
		stream.Close() // ends the call with two batches unread
		if stream.Next() || stream.Err() != nil {
			t.Errorf("after Close: Next true or Err %v", stream.Err())
		}
		var published summary
		py.jsonLine(&published)
	})
}

func TestPut(t *testing.T) {
	h := newHarness(t)
	_, location := h.startServe(h.runtime, "")
	client := h.connect(location)

	t.Run("reaches-a-python-subscriber", func(t *testing.T) {
		name := h.name("put")
		py := h.helperProc(h.runtime, "ready", "subscribe", name, "4")
		writer, err := client.Put(h.ctx, name, ledgerSchema)
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		for b := int64(0); b < 4; b++ {
			batch := ledgerBatch(b*100, 100)
			err := writer.Write(batch)
			batch.Release()
			if err != nil {
				t.Fatalf("Write %d: %v", b, err)
			}
		}
		if err := writer.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		var got struct {
			summary
			InOrder bool `json:"in_order"`
			More    bool `json:"more"`
		}
		py.jsonLine(&got)
		if want := expected(0, 4, 100); got.summary != want || !got.InOrder || got.More {
			t.Errorf("Python received %+v, want %+v in order and nothing more", got, want)
		}
	})

	t.Run("a-refused-schema-is-the-close-status", func(t *testing.T) {
		name := h.name("float")
		py := h.helperProc(h.runtime, "ready", "float", name)
		writer, err := client.Put(h.ctx, name, ledgerSchema)
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		batch := ledgerBatch(0, 10)
		defer batch.Release()
		// The server refuses the schema as it arrives: a later Write or the Close says so.
		var writeErr error
		for i := 0; i < 3 && writeErr == nil; i++ {
			writeErr = writer.Write(batch)
		}
		closeErr := writer.Close()
		if writeErr != nil && !errors.Is(closeErr, writeErr) && closeErr.Error() != writeErr.Error() {
			t.Errorf("Write said %v, Close %v", writeErr, closeErr)
		}
		requireCode(t, closeErr, codes.InvalidArgument, "")
		if d := quiverflight.Describe(closeErr, location); !strings.HasPrefix(d, "invalid argument: ") {
			t.Errorf("Describe: %q", d)
		}
		py.stdin.Close()
		var stats struct{ Published int64 }
		py.jsonLine(&stats)
		if stats.Published != 0 {
			t.Errorf("%d batches published into the float64 channel", stats.Published)
		}
	})
}

func TestCall(t *testing.T) {
	h := newHarness(t)
	_, location := h.startServe(h.runtime, "")
	service := h.name("ledger")
	h.helperProc(h.runtime, "serving", "serve", service, "stdin")
	client := h.connect(location)

	t.Run("listed", func(t *testing.T) {
		flights, err := client.List(h.ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, f := range flights {
			if f.Name == service {
				if !f.Service || f.Schema == nil || !f.Schema.Equal(ledgerSchema) ||
					f.Description != "ledger rows for tests" || !json.Valid(f.Metadata) {
					t.Errorf("listed as %+v (metadata %s)", f, f.Metadata)
				}
				return
			}
		}
		t.Errorf("List has no service %s: %+v", service, flights)
	})

	t.Run("rows-and-checksum", func(t *testing.T) {
		got, err := call(t, h.ctx, client, service, map[string]int{"batches": 5, "rows": 1000})
		if want := expected(0, 5, 1000); err != nil || got != want {
			t.Errorf("got %+v, %v; want %+v", got, err, want)
		}
		got, err = call(t, h.ctx, client, service, nil) // {}: the handler's defaults
		if want := expected(0, 1, 100); err != nil || got != want {
			t.Errorf("with a nil request: got %+v, %v; want %+v", got, err, want)
		}
		got, err = call(t, h.ctx, client, service, json.RawMessage(`{"batches": 2, "rows": 7}`))
		if want := expected(0, 2, 7); err != nil || got != want {
			t.Errorf("with a json.RawMessage: got %+v, %v; want %+v", got, err, want)
		}
	})

	t.Run("batches-over-4MiB", func(t *testing.T) {
		// 600,000 rows of two int64 columns: 9.6 MB a batch, over grpc-go's 4 MiB default.
		request := map[string]int{"batches": 2, "rows": 600_000}
		stream, err := client.Call(h.ctx, service, request)
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		var got summary
		for stream.Next() {
			batch := stream.RecordBatch()
			if size := batch.Column(0).Data().Buffers()[1].Len() * 2; size <= 8<<20 {
				t.Errorf("a batch of %d bytes: the test wants more than 8 MiB", size)
			}
			got.add(batch)
		}
		stream.Close()
		if want := expected(0, 2, 600_000); stream.Err() != nil || got != want {
			t.Errorf("got %+v, %v; want %+v", got, stream.Err(), want)
		}

		// With grpc-go's default limit, the batch is refused; the service serves on.
		limited := h.connect(location, quiverflight.WithMaxMessageSize(4<<20))
		_, err = call(t, h.ctx, limited, service, request)
		requireCode(t, err, codes.ResourceExhausted, "larger than max")
		if got, err := call(t, h.ctx, limited, service, nil); err != nil || got.Rows != 100 {
			t.Errorf("after the refused batch: %+v, %v", got, err)
		}
	})

	t.Run("unknown-service", func(t *testing.T) {
		_, err := call(t, h.ctx, client, h.name("nobody"), nil)
		requireCode(t, err, codes.NotFound, h.name("nobody"))
	})

	t.Run("the-workers-error", func(t *testing.T) {
		_, err := call(t, h.ctx, client, service, map[string]string{"fail": "plan 9 does not exist"})
		requireCode(t, err, codes.InvalidArgument, "plan 9 does not exist")
		if d := quiverflight.Describe(err, location); !strings.HasPrefix(d, "invalid argument: ") ||
			!strings.Contains(d, service) {
			t.Errorf("Describe: %q", d)
		}
		// The service goes on serving.
		if got, err := call(t, h.ctx, client, service, nil); err != nil || got.Rows != 100 {
			t.Errorf("after the error: %+v, %v", got, err)
		}
	})

	t.Run("bad-requests", func(t *testing.T) {
		if _, err := client.Call(h.ctx, service, json.RawMessage(`{"batches": `)); err == nil {
			t.Error("a request of invalid JSON was sent")
		}
		if _, err := client.Call(h.ctx, "", nil); err == nil {
			t.Error("a call without a service was sent")
		}
	})
}

func TestConnect(t *testing.T) {
	h := newHarness(t)
	tokenFile := filepath.Join(h.runtime, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, location := h.startServe(h.runtime, "grpc://127.0.0.1:0", "--token-file", tokenFile)

	for _, opts := range [][]quiverflight.Option{nil, {quiverflight.WithToken("wrong")}} {
		_, err := h.connect(location, opts...).List(h.ctx)
		requireCode(t, err, codes.Unauthenticated, "")
		if d := quiverflight.Describe(err, location); !strings.HasPrefix(d, "authentication failed") {
			t.Errorf("Describe: %q", d)
		}
	}
	for _, opt := range []quiverflight.Option{quiverflight.WithTokenFile(tokenFile), quiverflight.WithToken("s3cret-token")} {
		if _, err := h.connect(location, opt).List(h.ctx); err != nil {
			t.Errorf("List with the token: %v", err)
		}
	}
	if _, err := quiverflight.Connect(location, quiverflight.WithTokenFile(filepath.Join(h.runtime, "none"))); err == nil {
		t.Error("Connect took a missing token file")
	}

	if _, err := quiverflight.Connect("http://127.0.0.1:1"); !errors.Is(err, quiverflight.ErrBadAddress) {
		t.Errorf("Connect(http://...): %v, want ErrBadAddress", err)
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0") // a port that then nobody listens on
	if err != nil {
		t.Fatal(err)
	}
	nobody := listener.Addr().String()
	listener.Close()
	_, err = h.connect(nobody).List(h.ctx)
	if d := quiverflight.Describe(err, nobody); status.Code(err) != codes.Unavailable ||
		!strings.HasPrefix(d, "cannot reach the server at "+nobody) {
		t.Errorf("an unreachable server: %v, described as %q", err, d)
	}

	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	if got := quiverflight.DefaultAddr(); got != "grpc+unix:///run/user/4242/quiver/flight.sock" {
		t.Errorf("DefaultAddr() = %q", got)
	}
}

// shard is one `quiver run` pipeline: a Python worker node serving the test's service
// (told its shard number by the pipeline file) and a `quiver serve` node, in a runtime
// directory of its own.
type shard struct {
	index  int
	run    *proc
	socket string
}

func (h *harness) launchShard(index int, service string) shard {
	runtime := h.privateDir()
	socket := filepath.Join(runtime, "flight.sock")
	pipeline := fmt.Sprintf(`# shard %d of %s
[[node]]
name = "worker"
command = %q
args = [%q, "serve", %q, "signal"]
env = { QF_SHARD = "%d" }

[[node]]
name = "gateway"
command = %q
args = ["serve", "--listen", %q]
`, index, h.t.Name(), h.python, h.helper, service, index, h.quiver, "grpc+unix://"+socket)
	if err := os.WriteFile(filepath.Join(runtime, "pipeline.toml"), []byte(pipeline), 0o600); err != nil {
		h.t.Fatal(err)
	}
	run := h.start(fmt.Sprintf("quiver run (shard %d)", index), h.env(runtime), runtime, true,
		h.quiver, "run", "pipeline.toml")
	h.t.Cleanup(func() {
		run.stop()
		// 0, or the signal's exit code: SIGTERM stops the nodes, which is no failure.
		if code := run.cmd.ProcessState.ExitCode(); code != 0 && code != 130 && code != 143 {
			h.t.Errorf("%s exited %d:\n%s", run.what, code, run.transcript())
		}
	})

	return shard{index: index, run: run, socket: socket}
}

// awaitShard waits until the shard's gateway accepts connections and lists the service.
func (h *harness) awaitShard(s shard, service string) *quiverflight.Client {
	index, run, socket := s.index, s.run, s.socket
	deadline := time.Now().Add(30 * time.Second)
	for {
		if conn, err := net.Dial("unix", socket); err == nil {
			conn.Close()
			break
		}
		if !run.running() || time.Now().After(deadline) {
			h.t.Fatalf("shard %d's quiver serve does not accept connections:\n%s", index, run.transcript())
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := h.connect("grpc+unix://" + socket)
	for {
		flights, err := client.List(h.ctx)
		for _, f := range flights {
			if f.Service && f.Name == service {
				return client
			}
		}
		if !run.running() || time.Now().After(deadline) {
			h.t.Fatalf("shard %d does not list service %s (%v):\n%s", index, service, err, run.transcript())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFanOut(t *testing.T) {
	h := newHarness(t)
	service := h.name("sharded")
	// Both pipelines start at once; then each is waited for.
	launched := [2]shard{h.launchShard(0, service), h.launchShard(1, service)}
	var shards [2]*quiverflight.Client
	for i := range shards {
		shards[i] = h.awaitShard(launched[i], service)
	}
	request := map[string]int{"batches": 3, "rows": 1000}

	// What each shard answers on its own: its own rows (ids from shard * 1e9).
	var alone [2]summary
	for i, shard := range shards {
		got, err := call(t, h.ctx, shard, service, request)
		if want := expected(int64(i)*shardBase, 3, 1000); err != nil || got != want {
			t.Fatalf("shard %d alone: %+v, %v; want %+v", i, got, err, want)
		}
		alone[i] = got
	}

	// fanOut runs FanOut, checking each batch comes from the shard it is said to, and
	// that each is never called concurrently.
	fanOut := func(ctx context.Context, request any, each func(int)) ([2]summary, []error) {
		var per [2]summary
		var inside sync.Mutex
		errs := quiverflight.FanOut(ctx, shards[:], service, request, func(shard int, batch arrow.RecordBatch) error {
			if !inside.TryLock() {
				t.Error("each called concurrently")
				return nil
			}
			defer inside.Unlock()
			ids := batch.Column(0).(*array.Int64)
			if first := ids.Value(0); first/shardBase != int64(shard) {
				t.Errorf("a batch of shard %d (id %d) handed over as shard %d", first/shardBase, first, shard)
			}
			per[shard].add(batch)
			if each != nil {
				each(shard)
			}
			return nil
		})
		return per, errs
	}

	t.Run("merged", func(t *testing.T) {
		per, errs := fanOut(h.ctx, request, nil)
		for i, err := range errs {
			if err != nil {
				t.Errorf("shard %d: %v", i, err)
			}
		}
		if per != alone || per[0].plus(per[1]) != alone[0].plus(alone[1]) {
			t.Errorf("fanned out %+v, alone %+v", per, alone)
		}
	})

	t.Run("one-shard-fails", func(t *testing.T) {
		failing := map[string]int{"batches": 3, "rows": 1000, "fail_shard": 1}
		per, errs := fanOut(h.ctx, failing, nil)
		if len(errs) != 2 || errs[0] != nil {
			t.Fatalf("errors %v: want shard 0 to succeed", errs)
		}
		if per[0] != alone[0] || per[1] != (summary{}) {
			t.Errorf("received %+v: want all of shard 0 (%+v) and nothing of shard 1", per, alone[0])
		}
		requireCode(t, errs[1], codes.InvalidArgument, "shard 1 refuses this request")
		var shardErr *quiverflight.ShardError
		if !errors.As(errs[1], &shardErr) || shardErr.Shard != 1 || shardErr.Addr != shards[1].Addr() ||
			!strings.HasPrefix(errs[1].Error(), "shard 1 (") {
			t.Errorf("the error does not name shard 1: %#v", errs[1])
		}
		if d := quiverflight.Describe(errs[1], ""); !strings.HasPrefix(d, "shard 1: invalid argument: ") {
			t.Errorf("Describe: %q", d)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(h.ctx)
		defer cancel()
		// 160 MB a shard: more than its result channel (64 MiB) and gRPC's windows hold,
		// so no shard can have finished when both have sent a batch. (A cancelled call
		// does not stop the worker's handler: it runs to its end into a channel nobody
		// reads, so the request must stay finite for the worker to end with the test.)
		long := map[string]int{"batches": 200, "rows": 50_000}
		var seen [2]bool
		cancelled := false
		started := time.Now()
		_, errs := fanOut(ctx, long, func(shard int) {
			if cancelled {
				t.Error("each called after the cancel")
			}
			if seen[shard] = true; seen[0] && seen[1] {
				cancel()
				cancelled = true
			}
		})
		if elapsed := time.Since(started); elapsed > 10*time.Second {
			t.Errorf("FanOut took %s to stop after the cancel", elapsed)
		}
		for i, err := range errs {
			if status.Code(err) != codes.Canceled {
				t.Errorf("shard %d: %v, want Canceled", i, err)
			}
		}
		// Both shards serve on.
		for i, shard := range shards {
			if got, err := call(t, h.ctx, shard, service, request); err != nil || got != alone[i] {
				t.Errorf("shard %d after the cancel: %+v, %v", i, got, err)
			}
		}
	})
}
