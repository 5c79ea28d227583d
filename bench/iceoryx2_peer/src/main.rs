//! W3 frames (docs/benchmarks.md), the native iceoryx2 peer: one-way latency (round trip / 2)
//! of a ping-pong between this process and an echo child (this program started again), with
//! bench/pingpong's method, so its figures sit beside quiver-spin and quiver-blocking.
//!
//! Per payload size: a warm-up of max(rounds / 10, 50) round trips, then every round trip
//! timed; p50, p99, p99.9, mean and max of the one-way times; every 16th round trip, whether
//! both processes were on one CPU. One echo child per size, which dies with its parent.

mod link;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use iceoryx2::prelude::*;
use iceoryx2_bb_elementary::package_version::PackageVersion;

use link::{Side, INTERRUPTED};

#[derive(Parser, Debug)]
#[command(
    about = "W3 frames: iceoryx2 ping-pong latency between this process and an echo child",
    long_about = "W3 frames: one-way latency (round trip / 2) of an iceoryx2 ping-pong between \
this process and an echo child (this program started again), measured as Quiver's C++ \
pingpong_benchmark measures its transports: a warm-up, then every round trip timed; p50, p99 \
and p99.9 of the one-way times, and how often both processes sat on one CPU.",
    after_help = "Environment: QUIVER_BENCH_PIN=P,C (the CPUs of parent and child when pinned; \
default 0,1), QUIVER_BENCH_ROUNDS (the default of --rounds)."
)]
struct Cli {
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,

    /// Payload sizes in bytes, comma-separated, each at least 8.
    #[arg(long, value_delimiter = ',', default_value = "64,3840,65536,1048576,8388608",
          value_parser = clap::value_parser!(u64).range(8..))]
    sizes: Vec<u64>,

    /// Where the two processes run.
    #[arg(long, value_enum, default_value_t = Placement::Sched)]
    placement: Placement,

    /// Timed round trips at payloads up to 4 KiB; up to 64 KiB half as many, up to 1 MiB a
    /// tenth, larger a hundredth, never under 100 (as pingpong_benchmark).
    #[arg(long, env = "QUIVER_BENCH_ROUNDS", default_value_t = 20000,
          value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,

    /// Write the results here: a JSON list with one entry per size (transport, payload_bytes,
    /// placement, median_us, p99_us, p999_us, mean_us, max_us, same_cpu_pct, runs,
    /// round_trips_per_run, iceoryx2). Without it, the list goes to stdout.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,

    /// Internal: run as the echo child of this parent process id (for --sizes' only size).
    #[arg(long, value_name = "PID", help_heading = "Internal (the echo child)")]
    echo_for: Option<u32>,

    /// Internal: the echo child's memfd on which it stores its CPU number.
    #[arg(
        long,
        value_name = "FD",
        requires = "echo_for",
        help_heading = "Internal (the echo child)"
    )]
    cpu_board: Option<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Mode {
    /// Publish-subscribe of a [u8] slice: loan_slice_uninit, every byte written (the C++
    /// FillPayload), the receiver checks the sequence number and the last byte and busy-polls
    /// receive(), yielding the CPU after 20 us without a message.
    #[value(name = "iceoryx2-spin")]
    Spin,
    /// The same plus an event service per direction: the sender notifies after each send, the
    /// receiver waits on its listener (timed waits of 100 ms that check the peer).
    #[value(name = "iceoryx2-blocking")]
    Blocking,
    /// iceoryx2's own benchmark method (benchmarks/publish-subscribe): the payload is never
    /// written or read, the next sample is loaned before the timer restarts, the receiver
    /// busy-polls. Reported per round trip like the others.
    #[value(name = "iceoryx2-spin-own-method")]
    SpinOwnMethod,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Spin => "iceoryx2-spin",
            Mode::Blocking => "iceoryx2-blocking",
            Mode::SpinOwnMethod => "iceoryx2-spin-own-method",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Placement {
    /// Nothing pinned: where the scheduler puts them.
    Sched,
    /// Parent pinned to CPU P, child to CPU C (QUIVER_BENCH_PIN=P,C).
    Apart,
    /// Both pinned to CPU P.
    Together,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Sched => "sched",
            Placement::Apart => "apart",
            Placement::Together => "together",
        }
    }

    /// The CPUs of (parent, child); None: not pinned.
    fn cpus(self) -> (Option<usize>, Option<usize>) {
        let pin = std::env::var("QUIVER_BENCH_PIN").unwrap_or_default();
        let (parent, child) =
            match pin.split_once(',').map(|(p, c)| (p.trim().parse(), c.trim().parse())) {
                Some((Ok(p), Ok(c))) => (p, c),
                _ => (0, 1),
            };
        match self {
            Placement::Sched => (None, None),
            Placement::Apart => (Some(parent), Some(child)),
            Placement::Together => (Some(parent), Some(parent)),
        }
    }
}

/// pingpong_benchmark's RoundsFor: fewer round trips for larger payloads.
fn rounds_for(base: u64, size: u64) -> u64 {
    let rounds = match size {
        s if s > 1 << 20 => base / 100,
        s if s > 64 << 10 => base / 10,
        s if s > 4096 => base / 2,
        _ => base,
    };
    rounds.max(100)
}

fn warmup_for(rounds: u64) -> u64 {
    (rounds / 10).max(50)
}

fn main() -> ExitCode {
    // --version names the iceoryx2 this program is built with.
    let version = format!("{} (iceoryx2 {})", env!("CARGO_PKG_VERSION"), PackageVersion::get());
    let matches = Cli::command().version(version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    set_log_level(LogLevel::Error);
    install_signal_flag();
    let outcome = match cli.echo_for {
        Some(parent) => echo_child(&cli, parent).map_err(|e| format!("echo child: {e}")),
        None => run_parent(&cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iceoryx2_peer: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- The parent --------------------------------------------------------------------------

/// One case's figures (microseconds, one-way).
struct Entry {
    size: u64,
    rounds: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    mean: f64,
    max: f64,
    same_cpu_pct: f64,
}

fn run_parent(cli: &Cli) -> Result<(), String> {
    let (parent_cpu, child_cpu) = cli.placement.cpus();
    if let Some(cpu) = parent_cpu {
        pin_to(cpu).map_err(|e| format!("cannot pin this process to CPU {cpu}: {e}"))?;
    }
    let board = CpuBoard::new()?;
    let node = link::node()?;
    let mut entries = Vec::new();
    for &size in &cli.sizes {
        let what = format!("{} {} B {}", cli.mode.name(), size, cli.placement.name());
        let entry =
            run_case(cli, &node, size, child_cpu, &board).map_err(|e| format!("{what}: {e}"))?;
        eprintln!(
            "{what}: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us ({} round trips, same CPU {:.0} %)",
            entry.p50, entry.p99, entry.p999, entry.rounds, entry.same_cpu_pct
        );
        entries.push(entry);
    }
    drop(node);
    let json = to_json(cli, &entries);
    match &cli.json {
        Some(path) => {
            std::fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => std::io::stdout().write_all(json.as_bytes()).map_err(|e| e.to_string()),
    }
}

fn run_case(
    cli: &Cli,
    node: &Node<ipc::Service>,
    size: u64,
    child_cpu: Option<usize>,
    board: &CpuBoard,
) -> Result<Entry, String> {
    let rounds = rounds_for(cli.rounds, size);
    let name = link::service_name(std::process::id(), cli.mode, size as usize);
    let mut side = Side::new(node, &name, cli.mode, size as usize, true)?;
    let mut child = EchoChild::start(cli, size, child_cpu, board)?;
    let mut alive = || child.alive();

    let mut seq = 0;
    for _ in 0..warmup_for(rounds) {
        seq += 1;
        side.ping(seq, &mut alive).map_err(|e| format!("warm-up: {e}"))?;
        side.between()?;
    }
    let mut one_way_us = Vec::with_capacity(rounds as usize);
    let (mut cpu_samples, mut same_cpu) = (0u32, 0u32);
    for _ in 0..rounds {
        seq += 1;
        let t0 = Instant::now();
        side.ping(seq, &mut alive)?;
        let t1 = Instant::now();
        one_way_us.push((t1 - t0).as_secs_f64() * 1e6 / 2.0);
        side.between()?;
        if seq % 16 == 0 {
            cpu_samples += 1;
            same_cpu += u32::from(board.child_cpu() == current_cpu());
        }
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err("interrupted by a signal".into());
        }
    }
    // The child exits after its last echo; the services go after it.
    child.finish(Duration::from_secs(5))?;
    drop(side);

    let mean = one_way_us.iter().sum::<f64>() / one_way_us.len() as f64;
    one_way_us.sort_by(f64::total_cmp);
    Ok(Entry {
        size,
        rounds: one_way_us.len(),
        p50: percentile(&one_way_us, 0.50),
        p99: percentile(&one_way_us, 0.99),
        p999: percentile(&one_way_us, 0.999),
        mean,
        max: *one_way_us.last().expect("at least 100 round trips"),
        same_cpu_pct: if cpu_samples > 0 {
            100.0 * f64::from(same_cpu) / f64::from(cpu_samples)
        } else {
            f64::NAN
        },
    })
}

/// The nearest-rank q-quantile of sorted values (bench/pingpong/stats.cc's Percentile).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn to_json(cli: &Cli, entries: &[Entry]) -> String {
    let number = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            "null".into()
        }
    };
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n {{\"transport\": \"{}\", \"payload_bytes\": {}, \"placement\": \"{}\", \
             \"median_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"mean_us\": {}, \"max_us\": {}, \
             \"same_cpu_pct\": {}, \"runs\": 1, \"round_trips_per_run\": {}, \"iceoryx2\": \"{}\"}}",
            if i == 0 { "" } else { "," },
            cli.mode.name(), e.size, cli.placement.name(), number(e.p50), number(e.p99),
            number(e.p999), number(e.mean), number(e.max), number(e.same_cpu_pct), e.rounds,
            PackageVersion::get()
        );
    }
    out.push_str("\n]\n");
    out
}

/// The echo child of one case. Killed and reaped if it has not exited when this is dropped.
struct EchoChild {
    child: Child,
}

impl EchoChild {
    /// Starts this program as the echo child of one size and waits for its "ready" line.
    fn start(
        cli: &Cli,
        size: u64,
        cpu: Option<usize>,
        board: &CpuBoard,
    ) -> Result<EchoChild, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut command = Command::new(exe);
        command
            .args(["--mode", cli.mode.name(), "--sizes", &size.to_string()])
            .args([
                "--rounds",
                &cli.rounds.to_string(),
                "--echo-for",
                &std::process::id().to_string(),
            ])
            .args(["--cpu-board", &board.fd.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        // SAFETY: between fork and exec the closure makes system calls only, no allocation.
        unsafe {
            command.pre_exec(move || {
                // The child dies with this process, whatever kills it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                match cpu {
                    Some(cpu) => pin_to(cpu),
                    None => Ok(()),
                }
            });
        }
        let child = command.spawn().map_err(|e| format!("cannot start the echo child: {e}"))?;
        let mut echo = EchoChild { child };
        echo.wait_ready()?;
        Ok(echo)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stdout = self.child.stdout.take().expect("piped");
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            let mut pfd = libc::pollfd { fd: stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, link::LIVENESS_SLICE.as_millis() as i32) };
            if ready > 0 {
                let mut buf = [0u8; 64];
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        return Err(format!(
                            "the echo child failed to start ({})",
                            self.end_of_child()
                        ))
                    }
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                }
            } else if Instant::now() > deadline || INTERRUPTED.load(Ordering::Relaxed) {
                return Err("the echo child did not get ready within 10 s".into());
            }
        }
        if line != b"ready\n" {
            return Err(format!("the echo child said {:?}", String::from_utf8_lossy(&line)));
        }
        Ok(())
    }

    /// Err once the child has exited: during a case it must still be echoing.
    fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the echo child is gone ({status})")),
            Err(e) => Err(format!("cannot wait for the echo child: {e}")),
        }
    }

    /// Waits up to `limit` for a clean exit; kills the child after that.
    fn finish(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("the echo child failed ({status})")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => {
                    return Err(format!(
                        "the echo child did not exit; killed it ({})",
                        self.end_of_child()
                    ))
                }
            }
        }
    }

    /// Kills the child if it still runs, reaps it and says how it ended.
    fn end_of_child(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("cannot wait for it: {e}"),
        }
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.end_of_child();
        }
    }
}

// ---- The echo child ----------------------------------------------------------------------

fn echo_child(cli: &Cli, parent: u32) -> Result<(), String> {
    // The parent may have died before PR_SET_PDEATHSIG took effect.
    let mut alive = || {
        // SAFETY: a plain system call.
        if unsafe { libc::getppid() } as u32 == parent {
            Ok(())
        } else {
            Err("the parent process is gone".to_string())
        }
    };
    alive()?;
    let (&[size], Some(fd)) = (cli.sizes.as_slice(), cli.cpu_board) else {
        return Err("needs exactly one size and --cpu-board".into());
    };
    let board = CpuBoard::open(fd)?;
    let node = link::node()?;
    let mut side = Side::new(
        &node,
        &link::service_name(parent, cli.mode, size as usize),
        cli.mode,
        size as usize,
        false,
    )?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(b"ready\n")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot say ready: {e}"))?;
    let rounds = rounds_for(cli.rounds, size);
    for _ in 0..warmup_for(rounds) + rounds {
        side.echo(&mut alive)?;
        // After the reply, off the measured path of this round trip.
        board.set_child_cpu(current_cpu());
    }
    Ok(())
}

// ---- Processes and CPUs ------------------------------------------------------------------

/// One page shared by parent and child (a memfd the child inherits), on which the child
/// stores the CPU it ran on after every reply (bench/pingpong's CpuBoard).
struct CpuBoard {
    fd: i32,
    cpu: &'static AtomicI32,
}

impl CpuBoard {
    fn new() -> Result<CpuBoard, String> {
        // No MFD_CLOEXEC: the echo children inherit it.
        // SAFETY: a NUL-terminated name; the fd is checked.
        let fd = unsafe { libc::memfd_create(c"w3-iox2-cpu-board".as_ptr(), 0) };
        // SAFETY: a valid fd.
        if fd < 0 || unsafe { libc::ftruncate(fd, 4096) } != 0 {
            return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
        }
        CpuBoard::open(fd)
    }

    fn open(fd: i32) -> Result<CpuBoard, String> {
        // SAFETY: maps one page of `fd` shared; checked below; never unmapped (the process
        // keeps it to its end).
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(format!("mmap of the CPU board: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a page-aligned, zero-filled, shared mapping that lives as long as the process.
        let cpu = unsafe { AtomicI32::from_ptr(page.cast()) };
        Ok(CpuBoard { fd, cpu })
    }

    fn child_cpu(&self) -> i32 {
        self.cpu.load(Ordering::Relaxed)
    }

    fn set_child_cpu(&self, cpu: i32) {
        self.cpu.store(cpu, Ordering::Relaxed);
    }
}

fn current_cpu() -> i32 {
    // SAFETY: a plain call.
    unsafe { libc::sched_getcpu() }
}

/// Pins the calling process to `cpu`. Async-signal-safe (used between fork and exec).
fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays inside it for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// SIGINT and SIGTERM set INTERRUPTED: the waits end with an error and everything is dropped,
/// so an interrupted run leaves no shared memory behind.
fn install_signal_flag() {
    extern "C" fn on_signal(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::Relaxed);
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t)
        };
    }
}
