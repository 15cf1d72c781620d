//! [`InstrumentedSocket`]: any WebSocket `Stream + Sink`, counted.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::stream::FusedStream;
use futures_util::{Sink, Stream};
use pin_project_lite::pin_project;

use crate::guard::ConnectionGuard;
use crate::message::{Direction, WsMessage};
use crate::ws_metrics::WsMetrics;

pin_project! {
    /// A WebSocket that counts its connection and its messages; from [`WsMetrics::wrap`].
    ///
    /// Wraps any `S: Stream<Item = Result<M, E>> + Sink<M>` whose messages implement
    /// [`WsMessage`]: tokio-tungstenite's `WebSocketStream`, axum's `WebSocket`, or your own.
    /// Use it as the socket itself, through `futures_util::{StreamExt, SinkExt}` (`next`,
    /// `send`, `split`, `forward`...).
    ///
    /// - Each message received counts as `direction="in"`, each message accepted by
    ///   `start_send` as `direction="out"`, in `websocket.messages{channel, event, direction}`.
    /// - It holds the connection's [`ConnectionGuard`]. The connection counts as closed, once,
    ///   at the first of: the stream ends or yields an error (tungstenite ends the stream at
    ///   its first error: the peer vanished, a protocol error...), `poll_close` completes, or
    ///   the socket is dropped (the handler returned, failed, panicked or was cancelled).
    /// - `poll_ready`, `poll_flush` and `poll_close` are forwarded unchanged.
    ///
    /// After `StreamExt::split`, both halves share the socket, so a connection stays counted
    /// until both halves are dropped, or until the stream half sees the end of the
    /// connection: a sender task still holding the sink half does not keep a dead connection
    /// counted.
    #[must_use = "a socket does nothing unless polled; dropping it counts the connection as closed"]
    pub struct InstrumentedSocket<S> {
        #[pin]
        inner: S,
        metrics: WsMetrics,
        guard: Option<ConnectionGuard>,
    }
}

impl<S> InstrumentedSocket<S> {
    /// Wraps `socket`, counting a new connection of `metrics`' channel now.
    pub fn new(socket: S, metrics: WsMetrics) -> Self {
        let guard = Some(metrics.connection_guard());
        InstrumentedSocket {
            inner: socket,
            metrics,
            guard,
        }
    }

    /// The channel's telemetry.
    pub fn metrics(&self) -> &WsMetrics {
        &self.metrics
    }

    /// Whether the connection is still counted as open.
    pub fn is_counted_open(&self) -> bool {
        self.guard.is_some()
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped socket, mutably. Messages sent or received through it directly are not
    /// counted.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped socket, pinned. Messages sent or received through it directly are not
    /// counted.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut S> {
        self.project().inner
    }

    /// Unwraps the socket. The connection counts as closed now: what happens next is not
    /// measured.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn close_connection(guard: &mut Option<ConnectionGuard>) {
        drop(guard.take());
    }
}

impl<S, M, E> Stream for InstrumentedSocket<S>
where
    S: Stream<Item = Result<M, E>>,
    M: WsMessage,
{
    type Item = Result<M, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        match &item {
            Some(Ok(message)) => this.metrics.record(Direction::In, message),
            Some(Err(_)) | None => Self::close_connection(this.guard),
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S, M, E> FusedStream for InstrumentedSocket<S>
where
    S: FusedStream<Item = Result<M, E>>,
    M: WsMessage,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<S, M> Sink<M> for InstrumentedSocket<S>
where
    S: Sink<M>,
    M: WsMessage,
{
    type Error = S::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: M) -> Result<(), Self::Error> {
        let this = self.project();
        let metrics: &WsMetrics = this.metrics;
        let event = metrics.event_label(&item);
        this.inner.start_send(item)?;
        metrics.record_event(Direction::Out, event);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.project();
        let result = ready!(this.inner.poll_close(cx));
        Self::close_connection(this.guard);
        Poll::Ready(result)
    }
}

impl<S: fmt::Debug> fmt::Debug for InstrumentedSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstrumentedSocket")
            .field("inner", &self.inner)
            .field("channel", &self.metrics.channel())
            .field("guard", &self.guard)
            .finish()
    }
}
