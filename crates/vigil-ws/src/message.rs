//! The message abstraction: what the instrumentation needs to know about a WebSocket message.

use std::fmt;

/// The type of a WebSocket frame, and the `event` label of frames that carry no JSON event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A ping control frame.
    Ping,
    /// A pong control frame.
    Pong,
    /// A close control frame.
    Close,
    /// A raw frame (tungstenite's `Message::Frame`, only seen when sending raw frames).
    Frame,
}

impl FrameKind {
    /// Every frame kind, in declaration order.
    pub const ALL: [FrameKind; 6] = [
        FrameKind::Text,
        FrameKind::Binary,
        FrameKind::Ping,
        FrameKind::Pong,
        FrameKind::Close,
        FrameKind::Frame,
    ];

    /// The label value: `text`, `binary`, `ping`, `pong`, `close` or `frame`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameKind::Text => "text",
            FrameKind::Binary => "binary",
            FrameKind::Ping => "ping",
            FrameKind::Pong => "pong",
            FrameKind::Close => "close",
            FrameKind::Frame => "frame",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a message went: the `direction` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received from the peer: `in`.
    In,
    /// Sent to the peer: `out`.
    Out,
}

impl Direction {
    /// `in` or `out`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket message as the instrumentation sees it: its frame type and, for text
/// messages, its text.
///
/// Implemented for `tokio_tungstenite::tungstenite::Message` (feature `tungstenite`) and
/// `axum::extract::ws::Message` (feature `axum`). Implement it for another library's message
/// type to use [`InstrumentedSocket`](crate::InstrumentedSocket) with that library.
///
/// ```
/// use vigil_ws::{FrameKind, WsMessage};
///
/// enum MyMessage {
///     Text(String),
///     Bytes(Vec<u8>),
/// }
///
/// impl WsMessage for MyMessage {
///     fn frame_kind(&self) -> FrameKind {
///         match self {
///             MyMessage::Text(_) => FrameKind::Text,
///             MyMessage::Bytes(_) => FrameKind::Binary,
///         }
///     }
///     fn as_text(&self) -> Option<&str> {
///         match self {
///             MyMessage::Text(t) => Some(t),
///             MyMessage::Bytes(_) => None,
///         }
///     }
/// }
/// # assert_eq!(MyMessage::Bytes(vec![1]).frame_kind(), FrameKind::Binary);
/// ```
pub trait WsMessage {
    /// The frame type.
    fn frame_kind(&self) -> FrameKind;
    /// The text of a text message; `None` for every other frame type.
    fn as_text(&self) -> Option<&str>;
}

impl<M: WsMessage + ?Sized> WsMessage for &M {
    fn frame_kind(&self) -> FrameKind {
        (**self).frame_kind()
    }
    fn as_text(&self) -> Option<&str> {
        (**self).as_text()
    }
}

#[cfg(feature = "tungstenite")]
impl WsMessage for tokio_tungstenite::tungstenite::Message {
    fn frame_kind(&self) -> FrameKind {
        use tokio_tungstenite::tungstenite::Message;
        match self {
            Message::Text(_) => FrameKind::Text,
            Message::Binary(_) => FrameKind::Binary,
            Message::Ping(_) => FrameKind::Ping,
            Message::Pong(_) => FrameKind::Pong,
            Message::Close(_) => FrameKind::Close,
            Message::Frame(_) => FrameKind::Frame,
        }
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            tokio_tungstenite::tungstenite::Message::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

#[cfg(feature = "axum")]
impl WsMessage for axum::extract::ws::Message {
    fn frame_kind(&self) -> FrameKind {
        use axum::extract::ws::Message;
        match self {
            Message::Text(_) => FrameKind::Text,
            Message::Binary(_) => FrameKind::Binary,
            Message::Ping(_) => FrameKind::Ping,
            Message::Pong(_) => FrameKind::Pong,
            Message::Close(_) => FrameKind::Close,
        }
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            axum::extract::ws::Message::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_documented_ones() {
        let labels: Vec<&str> = FrameKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels, ["text", "binary", "ping", "pong", "close", "frame"]);
        assert_eq!(Direction::In.to_string(), "in");
        assert_eq!(Direction::Out.to_string(), "out");
    }

    #[cfg(feature = "tungstenite")]
    #[test]
    fn tungstenite_messages() {
        use tokio_tungstenite::tungstenite::Message;
        let text = Message::text("hi");
        assert_eq!((text.frame_kind(), text.as_text()), (FrameKind::Text, Some("hi")));
        assert_eq!(Message::binary(vec![1]).frame_kind(), FrameKind::Binary);
        assert_eq!(Message::Ping(Vec::new().into()).frame_kind(), FrameKind::Ping);
        assert_eq!(Message::Pong(Vec::new().into()).frame_kind(), FrameKind::Pong);
        assert_eq!(Message::Close(None).frame_kind(), FrameKind::Close);
        assert_eq!(Message::binary(vec![1]).as_text(), None);
        let raw = tokio_tungstenite::tungstenite::protocol::frame::Frame::ping(Vec::new());
        assert_eq!(Message::Frame(raw).frame_kind(), FrameKind::Frame);
    }

    #[cfg(feature = "axum")]
    fn kind_of<M: WsMessage>(message: M) -> FrameKind {
        message.frame_kind()
    }

    #[cfg(feature = "axum")]
    #[test]
    fn axum_messages() {
        use axum::extract::ws::Message;
        let text = Message::text("hi");
        assert_eq!((text.frame_kind(), text.as_text()), (FrameKind::Text, Some("hi")));
        assert_eq!(Message::binary(vec![1]).frame_kind(), FrameKind::Binary);
        assert_eq!(Message::Ping(Vec::new().into()).frame_kind(), FrameKind::Ping);
        assert_eq!(Message::Pong(Vec::new().into()).frame_kind(), FrameKind::Pong);
        assert_eq!(Message::Close(None).frame_kind(), FrameKind::Close);
        let binary = Message::binary(vec![1]);
        assert_eq!(kind_of(&binary), FrameKind::Binary, "through the impl for &M");
        assert_eq!(binary.as_text(), None);
    }
}
