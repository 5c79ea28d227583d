//! One process's side of one case: the iceoryx2 services and ports of a ping-pong, sending,
//! and waiting for the peer's message as bench/pingpong does (busy-poll with a yield, or a
//! blocking wait in slices that check the peer).

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::sample::Sample;
use iceoryx2::sample_mut::SampleMut;

use crate::Mode;

type PubSubService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;
type EventService = iceoryx2::service::port_factory::event::PortFactory<ipc::Service>;
type Received = Sample<ipc::Service, [u8], ()>;

/// A receiver that hears nothing for this long gives up (bench/pingpong's kSilenceLimit).
const SILENCE_LIMIT: Duration = Duration::from_secs(10);
/// Waits come back this often to check that the peer still lives (kLivenessSlice).
pub const LIVENESS_SLICE: Duration = Duration::from_millis(100);
/// Busy-pollers yield the CPU after this long without a message (kSpinBeforeYield): on a CPU
/// shared with the peer a pure busy-poll would hold it while the peer cannot run.
const SPIN_BEFORE_YIELD: Duration = Duration::from_micros(20);

/// Set by SIGINT / SIGTERM: the waits end with an error, so ports, services and nodes are
/// dropped and their shared memory goes with them.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Says whether the peer process still lives: Err(why) once it is gone.
pub type Liveness<'a> = &'a mut dyn FnMut() -> Result<(), String>;

pub fn node() -> Result<Node<ipc::Service>, String> {
    // No signal handlers of iceoryx2's own: they would swallow SIGINT until node.wait().
    NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| format!("cannot create an iceoryx2 node: {e:?}"))
}

/// The service names of one case: unique per parent process, mode and size.
pub fn service_name(parent: u32, mode: Mode, size: usize) -> String {
    format!("w3-iox2-{parent}-{}-{size}", mode.name())
}

/// The services and ports of one side. The parent creates the services, publishes on "ping"
/// and subscribes to "pong"; the echo child opens them and does the opposite.
pub struct Side {
    mode: Mode,
    size: usize,
    // Fields drop in order: ports before the services they belong to.
    publisher: Publisher<ipc::Service, [u8], ()>,
    subscriber: Subscriber<ipc::Service, [u8], ()>,
    notifier: Option<Notifier<ipc::Service>>,
    listener: Option<Listener<ipc::Service>>,
    /// iceoryx2's own method: the sample the next send publishes, loaned ahead.
    ahead: Option<SampleMut<ipc::Service, [u8], ()>>,
    _services: (Vec<PubSubService>, Vec<EventService>),
}

impl Side {
    pub fn new(
        node: &Node<ipc::Service>,
        name: &str,
        mode: Mode,
        size: usize,
        parent: bool,
    ) -> Result<Side, String> {
        let pubsub = |direction: &str| {
            let service_name = ServiceName::new(&format!("{name}/{direction}"))
                .map_err(|e| format!("service name: {e:?}"))?;
            let mut builder = node
                .service_builder(&service_name)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1);
            if mode == Mode::SpinOwnMethod {
                // The service of iceoryx2's benchmarks/publish-subscribe.
                builder = builder
                    .history_size(0)
                    .subscriber_max_buffer_size(1)
                    .enable_safe_overflow(true);
            }
            if parent {
                builder.create().map_err(|e| format!("create {direction}: {e:?}"))
            } else {
                builder.open().map_err(|e| format!("open {direction}: {e:?}"))
            }
        };
        let event = |direction: &str| {
            let service_name = ServiceName::new(&format!("{name}/{direction}"))
                .map_err(|e| format!("service name: {e:?}"))?;
            let builder = node.service_builder(&service_name).event();
            if parent {
                builder.create().map_err(|e| format!("create event {direction}: {e:?}"))
            } else {
                builder.open().map_err(|e| format!("open event {direction}: {e:?}"))
            }
        };
        let (ping, pong) = (pubsub("ping")?, pubsub("pong")?);
        let (tx, rx) = if parent { (&ping, &pong) } else { (&pong, &ping) };
        let publisher = tx
            .publisher_builder()
            .initial_max_slice_len(size)
            .create()
            .map_err(|e| format!("publisher: {e:?}"))?;
        let subscriber =
            rx.subscriber_builder().create().map_err(|e| format!("subscriber: {e:?}"))?;
        let (mut notifier, mut listener, mut events) = (None, None, vec![]);
        if mode == Mode::Blocking {
            let (ping, pong) = (event("ping")?, event("pong")?);
            let (tx, rx) = if parent { (&ping, &pong) } else { (&pong, &ping) };
            notifier =
                Some(tx.notifier_builder().create().map_err(|e| format!("notifier: {e:?}"))?);
            listener =
                Some(rx.listener_builder().create().map_err(|e| format!("listener: {e:?}"))?);
            events = vec![ping, pong];
        }
        let _services = (vec![ping, pong], events);
        Ok(Side { mode, size, publisher, subscriber, notifier, listener, ahead: None, _services })
    }

    /// The timed part of a round trip in the parent: send message `seq`, wait for its echo.
    pub fn ping(&mut self, seq: u64, alive: Liveness) -> Result<(), String> {
        if self.mode == Mode::SpinOwnMethod {
            self.send_ahead()?;
            self.wait(alive).map(drop)
        } else {
            self.send(seq)?;
            match self.receive(alive)? {
                got if got == seq => Ok(()),
                got => Err(format!("echo out of order: sent {seq}, got {got}")),
            }
        }
    }

    /// Between two round trips, off the timed path: iceoryx2's own method loans its next
    /// sample here. Nothing for the other modes.
    pub fn between(&mut self) -> Result<(), String> {
        if self.mode == Mode::SpinOwnMethod {
            self.loan_ahead()?;
        }
        Ok(())
    }

    /// The echo child's turn: wait for a message, send it back.
    pub fn echo(&mut self, alive: Liveness) -> Result<(), String> {
        if self.mode == Mode::SpinOwnMethod {
            // As iceoryx2's echo does: loan before waiting, so the reply only sends.
            self.loan_ahead()?;
            self.wait(alive).map(drop)?;
            self.send_ahead()
        } else {
            let seq = self.receive(alive)?;
            self.send(seq)
        }
    }

    /// Loan, write every byte (bench/pingpong/payload.h FillPayload: the sequence number's
    /// low byte everywhere, then the sequence number in the first 8), send, notify.
    fn send(&mut self, seq: u64) -> Result<(), String> {
        let mut sample =
            self.publisher.loan_slice_uninit(self.size).map_err(|e| format!("loan: {e:?}"))?;
        let payload = sample.payload_mut();
        payload.fill(MaybeUninit::new(seq as u8));
        for (byte, value) in payload.iter_mut().zip(seq.to_ne_bytes()) {
            byte.write(value);
        }
        // SAFETY: every byte was written just above.
        let sample = unsafe { sample.assume_init() };
        sample.send().map_err(|e| format!("send: {e:?}"))?;
        self.notify()
    }

    /// Waits for a message and checks it (CheckPayload: its length, and its last byte against
    /// the sequence number in its first 8). Returns the sequence number.
    fn receive(&mut self, alive: Liveness) -> Result<u64, String> {
        let sample = self.wait(alive)?;
        let payload = sample.payload();
        let seq = u64::from_ne_bytes(payload[..8].try_into().expect("8 bytes"));
        if self.size > 8 && payload[self.size - 1] != seq as u8 {
            return Err(format!(
                "payload corrupted: sequence number {seq}, last byte {}",
                payload[self.size - 1]
            ));
        }
        Ok(seq)
    }

    fn loan_ahead(&mut self) -> Result<(), String> {
        if self.ahead.is_none() {
            let sample =
                self.publisher.loan_slice_uninit(self.size).map_err(|e| format!("loan: {e:?}"))?;
            // SAFETY: as in iceoryx2's benchmark, the payload is never written nor read: its
            // bytes are whatever the mapped segment holds (zeros or an earlier message).
            self.ahead = Some(unsafe { sample.assume_init() });
        }
        Ok(())
    }

    fn send_ahead(&mut self) -> Result<(), String> {
        self.loan_ahead()?; // a no-op unless nobody loaned ahead (the first message)
        let sample = self.ahead.take().expect("loaned just above");
        sample.send().map_err(|e| format!("send: {e:?}"))?;
        self.notify()
    }

    fn notify(&self) -> Result<(), String> {
        match &self.notifier {
            Some(notifier) => notifier.notify().map(drop).map_err(|e| format!("notify: {e:?}")),
            None => Ok(()),
        }
    }

    /// The next message (its length checked): busy-polled, or waited for on the listener.
    fn wait(&mut self, alive: Liveness) -> Result<Received, String> {
        let sample = match self.try_receive()? {
            Some(sample) => sample,
            None if self.listener.is_some() => self.wait_blocking(alive)?,
            None => self.wait_busy(alive)?,
        };
        if sample.payload().len() != self.size {
            return Err(format!(
                "a message of {} bytes, expected {}",
                sample.payload().len(),
                self.size
            ));
        }
        Ok(sample)
    }

    fn try_receive(&self) -> Result<Option<Received>, String> {
        self.subscriber.receive().map_err(|e| format!("receive: {e:?}"))
    }

    fn wait_busy(&self, alive: Liveness) -> Result<Received, String> {
        let mut poll = Poll::default();
        loop {
            if let Some(sample) = self.try_receive()? {
                return Ok(sample);
            }
            poll.again(alive)?;
        }
    }

    /// Waits in slices of LIVENESS_SLICE; a slice without an event checks the peer. A wake-up
    /// without a message (the event of a message already taken) just waits again.
    fn wait_blocking(&self, alive: Liveness) -> Result<Received, String> {
        let listener = self.listener.as_ref().expect("blocking mode");
        let start = Instant::now();
        loop {
            let events = listener
                .timed_wait(|_| {}, LIVENESS_SLICE)
                .map_err(|e| format!("timed_wait: {e:?}"))?;
            if let Some(sample) = self.try_receive()? {
                return Ok(sample);
            }
            if events == 0 {
                keep_waiting(start, alive)?;
            }
        }
    }
}

/// bench/pingpong's PollState / PollAgain: a pause after every empty poll; the clock read every
/// 64 polls only, so the fast path stays a load and a pause; a yield after SPIN_BEFORE_YIELD;
/// the peer checked every LIVENESS_SLICE.
#[derive(Default)]
struct Poll {
    polls: u64,
    start: Option<Instant>,
    last_yield: Option<Instant>,
    last_check: Option<Instant>,
}

impl Poll {
    #[inline]
    fn again(&mut self, alive: Liveness) -> Result<(), String> {
        std::hint::spin_loop();
        self.polls += 1;
        if !self.polls.is_multiple_of(64) {
            return Ok(());
        }
        let now = Instant::now();
        let (Some(start), Some(last_yield), Some(last_check)) =
            (self.start, self.last_yield, self.last_check)
        else {
            (self.start, self.last_yield, self.last_check) = (Some(now), Some(now), Some(now));
            return Ok(());
        };
        if now - last_yield >= SPIN_BEFORE_YIELD {
            // SAFETY: a plain system call.
            unsafe { libc::sched_yield() };
            self.last_yield = Some(Instant::now());
        }
        if now - last_check >= LIVENESS_SLICE {
            self.last_check = Some(now);
            keep_waiting(start, alive)?;
        }
        Ok(())
    }
}

/// The slow path of every wait: Err once the peer is gone, this process was interrupted, or
/// nothing came for SILENCE_LIMIT.
fn keep_waiting(since: Instant, alive: Liveness) -> Result<(), String> {
    alive()?;
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted by a signal".into());
    }
    if since.elapsed() > SILENCE_LIMIT {
        return Err(format!("no message for {} s", SILENCE_LIMIT.as_secs()));
    }
    Ok(())
}
