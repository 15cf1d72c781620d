//! A non-blocking line writer: callers queue finished lines, one background thread writes
//! them. Shared by the console backend and file-style custom backends.
//!
//! The queue is a lock-free bounded array. Callers never make a system call to wake the
//! writer while it is busy: the writer polls with short naps while lines keep coming and
//! parks only after it has been idle for a while; a caller unparks it only then, or when
//! the queue is half full.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::catalogue;

/// Buffers larger than this are not recycled.
const RECYCLE_MAX_CAPACITY: usize = 16 * 1024;
/// How many empty buffers wait for reuse.
const POOL_SIZE: usize = 256;
/// Bytes collected before one write to the destination.
const BATCH_BYTES: usize = 64 * 1024;
/// The writer's first nap when the queue runs empty; naps double up to [`MAX_NAP`].
const FIRST_NAP: Duration = Duration::from_micros(50);
/// The longest nap between polls while recently busy.
const MAX_NAP: Duration = Duration::from_millis(2);
/// Idle time after which the writer parks until a caller wakes it.
const PARK_AFTER: Duration = Duration::from_millis(20);
/// The longest the idle writer sleeps between looks at the queue.
const IDLE_PARK: Duration = Duration::from_millis(100);

enum Message {
    Line(Vec<u8>),
    Flush(mpsc::SyncSender<()>),
    Stop,
}

/// Counters of a [`QueuedWriter`].
#[derive(Debug, Default)]
pub struct WriterStats {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

impl WriterStats {
    /// Lines written.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Lines lost because the destination returned an error (a full disk, a closed pipe).
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }
}

/// State shared by the callers and the writer thread.
struct Shared {
    queue: ArrayQueue<Message>,
    pool: ArrayQueue<Vec<u8>>,
    parked: AtomicBool,
    stats: WriterStats,
}

/// Writes lines on a background thread through a bounded queue.
///
/// [`send`](Self::send) never blocks and makes no system call in the common case: when the
/// queue is full the line is dropped and counted (in [`WriterStats`] and in the
/// `vigil.log.dropped` metric with `reason="queue_full"`). Buffers are recycled, so a steady
/// stream of lines allocates nothing.
///
/// ```
/// use vigil_core::QueuedWriter;
///
/// let writer = QueuedWriter::spawn("example", std::io::sink(), 1024).unwrap();
/// let mut line = writer.buffer();
/// line.extend_from_slice(b"hello\n");
/// assert!(writer.send(line));
/// writer.flush();
/// assert_eq!(writer.stats().written(), 1);
/// ```
pub struct QueuedWriter {
    name: &'static str,
    shared: Arc<Shared>,
    thread: Thread,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for QueuedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedWriter")
            .field("name", &self.name)
            .field("queued", &self.shared.queue.len())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl QueuedWriter {
    /// Starts the writer thread for `destination`, with room for `capacity` queued lines.
    ///
    /// `name` labels the drop metric (`backend="<name>"`) and the thread.
    ///
    /// # Errors
    ///
    /// When the thread cannot be spawned.
    pub fn spawn<W: Write + Send + 'static>(name: &'static str, destination: W, capacity: usize) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(capacity.max(1)),
            pool: ArrayQueue::new(POOL_SIZE),
            parked: AtomicBool::new(false),
            stats: WriterStats::default(),
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("vigil-{name}-writer"))
            .spawn(move || write_loop(name, destination, &thread_shared))?;
        let thread = handle.thread().clone();
        Ok(QueuedWriter {
            name,
            shared,
            thread,
            handle: Mutex::new(Some(handle)),
        })
    }

    /// An empty buffer to format a line into: a recycled one when available.
    pub fn buffer(&self) -> Vec<u8> {
        self.shared.pool.pop().unwrap_or_else(|| Vec::with_capacity(256))
    }

    /// Queues one line (which should end in `\n`). Returns `false` if it was dropped because
    /// the queue is full.
    pub fn send(&self, line: Vec<u8>) -> bool {
        if let Err(Message::Line(mut line)) = self.shared.queue.push(Message::Line(line)) {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(catalogue::VIGIL_LOG_DROPPED.name, "backend" => self.name, "reason" => "queue_full")
                .increment(1);
            line.clear();
            let _ = self.shared.pool.push(line);
            self.wake();
            return false;
        }
        if self.shared.parked.load(Ordering::SeqCst) || self.shared.queue.len() * 2 >= self.shared.queue.capacity() {
            self.wake();
        }
        true
    }

    fn wake(&self) {
        self.shared.parked.store(false, Ordering::Relaxed);
        self.thread.unpark();
    }

    /// Waits until every line queued before this call is written and the destination flushed.
    /// While the queue is full this waits for room.
    pub fn flush(&self) {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let mut message = Message::Flush(ack_tx);
        loop {
            match self.shared.queue.push(message) {
                Ok(()) => break,
                Err(m) => {
                    if self.is_stopped() {
                        return;
                    }
                    message = m;
                    self.wake();
                    std::thread::sleep(FIRST_NAP);
                }
            }
        }
        self.wake();
        let _ = ack_rx.recv();
    }

    fn is_stopped(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Lines waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }
}

impl Drop for QueuedWriter {
    fn drop(&mut self) {
        let mut stop = Message::Stop;
        while let Err(m) = self.shared.queue.push(stop) {
            stop = m;
            self.wake();
            std::thread::sleep(FIRST_NAP);
        }
        self.wake();
        if let Some(handle) = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = handle.join();
        }
    }
}

/// Lines collected before they are written together.
struct Batch {
    bytes: Vec<u8>,
    lines: u64,
}

fn write_loop<W: Write>(name: &'static str, mut destination: W, shared: &Shared) {
    let mut batch = Batch {
        bytes: Vec::with_capacity(BATCH_BYTES),
        lines: 0,
    };
    let mut nap = FIRST_NAP;
    let mut idle_since: Option<Instant> = None;
    loop {
        let Some(message) = shared.queue.pop() else {
            // The queue is empty: write what was collected, then nap, and after a while park.
            write_batch(name, &mut destination, &mut batch, &shared.stats, false);
            let idle = *idle_since.get_or_insert_with(Instant::now);
            if idle.elapsed() >= PARK_AFTER {
                shared.parked.store(true, Ordering::SeqCst);
                if shared.queue.is_empty() {
                    // A bounded park: even a wake-up lost to a race costs at most this delay.
                    std::thread::park_timeout(IDLE_PARK);
                }
                shared.parked.store(false, Ordering::Relaxed);
            } else {
                std::thread::park_timeout(nap);
                nap = (nap * 2).min(MAX_NAP);
            }
            continue;
        };
        idle_since = None;
        nap = FIRST_NAP;
        match message {
            Message::Line(mut line) => {
                batch.bytes.extend_from_slice(&line);
                batch.lines += 1;
                if line.capacity() <= RECYCLE_MAX_CAPACITY {
                    line.clear();
                    let _ = shared.pool.push(line);
                }
                if batch.bytes.len() >= BATCH_BYTES {
                    write_batch(name, &mut destination, &mut batch, &shared.stats, false);
                }
            }
            Message::Flush(ack) => {
                write_batch(name, &mut destination, &mut batch, &shared.stats, true);
                let _ = ack.send(());
            }
            Message::Stop => break,
        }
    }
    write_batch(name, &mut destination, &mut batch, &shared.stats, true);
}

fn write_batch<W: Write>(name: &'static str, destination: &mut W, batch: &mut Batch, stats: &WriterStats, flush: bool) {
    if batch.lines > 0 {
        let result = destination.write_all(&batch.bytes).and_then(|()| destination.flush());
        if result.is_ok() {
            stats.written.fetch_add(batch.lines, Ordering::Relaxed);
        } else {
            stats.write_errors.fetch_add(batch.lines, Ordering::Relaxed);
            metrics::counter!(catalogue::VIGIL_LOG_DROPPED.name, "backend" => name, "reason" => "write_error")
                .increment(batch.lines);
        }
        batch.bytes.clear();
        if batch.bytes.capacity() > 4 * BATCH_BYTES {
            batch.bytes.shrink_to(BATCH_BYTES);
        }
        batch.lines = 0;
    } else if flush {
        let _ = destination.flush();
    }
}
