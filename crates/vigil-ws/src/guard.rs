//! The connection guard: `websocket.connections` up while it lives, down exactly once when
//! it is dropped.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_core::catalogue::{WEBSOCKET_CONNECTION_DURATION, WEBSOCKET_CONNECTIONS};
use vigil_core::handles;

use crate::error::WsError;
use crate::ws_metrics::validate_channel;

/// Counts one open WebSocket connection of a channel for as long as it lives.
///
/// Creating it adds 1 to `websocket.connections{channel}`; dropping it subtracts 1 and, unless
/// turned off, records how long it lived in `websocket.connection.duration{channel}` (ms).
/// Because the decrement is in `Drop`, it happens exactly once however the connection ends:
/// a close, an error, a client that vanished, a cancelled task (`JoinHandle::abort`, a lost
/// `select!` branch) or a panic that unwinds through the handler.
///
/// [`WsMetrics::wrap`](crate::WsMetrics::wrap) creates one inside the socket it returns; build
/// one yourself for another WebSocket library and keep it in the connection's task.
///
/// ```
/// use vigil_ws::ConnectionGuard;
///
/// # fn handle_connection() {}
/// let guard = ConnectionGuard::new("comments")?; // websocket.connections{channel="comments"} + 1
/// handle_connection();
/// drop(guard); // - 1, and one duration observation
/// # Ok::<(), vigil_ws::WsError>(())
/// ```
#[must_use = "the connection is counted only while the guard lives"]
pub struct ConnectionGuard {
    channel: Arc<str>,
    opened: Instant,
    record_duration: bool,
}

impl ConnectionGuard {
    /// Counts a new connection of `channel`, a bounded name chosen by the application
    /// (`"comments"`, never a per-user topic): non-empty, at most 64 characters, each in
    /// `[A-Za-z0-9_.:-]`.
    ///
    /// # Errors
    ///
    /// [`WsError::InvalidChannel`] when the name is not valid; nothing is counted then.
    pub fn new(channel: &str) -> Result<Self, WsError> {
        validate_channel(channel)?;
        Ok(Self::open(Arc::from(channel), true))
    }

    /// Counts a new connection of an already validated channel.
    pub(crate) fn open(channel: Arc<str>, record_duration: bool) -> Self {
        handles::gauge_add(WEBSOCKET_CONNECTIONS.name, 1.0, &[("channel", &channel)]);
        ConnectionGuard {
            channel,
            opened: Instant::now(),
            record_duration,
        }
    }

    /// Turns off the duration observation on drop.
    pub fn without_duration(mut self) -> Self {
        self.record_duration = false;
        self
    }

    /// The channel this connection counts in.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// How long the connection has been open.
    pub fn elapsed(&self) -> Duration {
        self.opened.elapsed()
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let tags = [("channel", &*self.channel)];
        handles::gauge_add(WEBSOCKET_CONNECTIONS.name, -1.0, &tags);
        if self.record_duration {
            let ms = self.opened.elapsed().as_secs_f64() * 1000.0;
            handles::histogram(WEBSOCKET_CONNECTION_DURATION.name, ms, &tags);
        }
    }
}

impl fmt::Debug for ConnectionGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionGuard")
            .field("channel", &self.channel)
            .field("opened", &self.opened)
            .field("record_duration", &self.record_duration)
            .finish()
    }
}
