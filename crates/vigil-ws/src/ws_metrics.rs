//! [`WsMetrics`]: one channel's configuration and recording.

use std::fmt;
use std::sync::Arc;

use vigil_core::catalogue::WEBSOCKET_MESSAGES;
use vigil_core::handles;

use crate::classify::{
    ClassifyOptions, EventLabel, MAX_EVENT_LEN_LIMIT, OTHER, classify_text, event_name_problem, is_name_byte,
};
use crate::error::WsError;
use crate::events::EventSet;
use crate::guard::ConnectionGuard;
use crate::message::{Direction, FrameKind, WsMessage};
use crate::socket::InstrumentedSocket;

/// The longest channel name, in characters.
pub const MAX_CHANNEL_LEN: usize = 64;

/// The default number of distinct event names a channel learns at run time.
pub const DEFAULT_MAX_LEARNED_EVENTS: usize = 32;

/// The largest accepted number of distinct event names per channel (learned or allow-listed).
pub const MAX_EVENT_NAMES_LIMIT: usize = 1024;

/// Checks a channel name: non-empty, at most [`MAX_CHANNEL_LEN`] characters in `[A-Za-z0-9_.:-]`.
pub(crate) fn validate_channel(channel: &str) -> Result<(), WsError> {
    let reason = if channel.is_empty() {
        "it is empty"
    } else if channel.chars().count() > MAX_CHANNEL_LEN {
        "it is longer than 64 characters"
    } else if !channel.bytes().all(is_name_byte) {
        "only A-Z, a-z, 0-9, '_', '.', ':' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(WsError::InvalidChannel {
        channel: channel.to_owned(),
        reason,
    })
}

/// WebSocket telemetry for one channel: wraps its sockets, and counts their connections and
/// messages.
///
/// A channel is a bounded name the application chooses (`"comments"`, `"presence"`), used as
/// the `channel` label; never put a per-user or per-room topic in it. Cheap to clone (an
/// `Arc` inside): build one per channel at start-up and clone it into each handler.
///
/// It records, through `vigil_core::handles` (cached handles, no registry lookup per message):
///
/// - `websocket.connections{channel}` (gauge): +1 when a socket is wrapped, -1 when it closes
///   or is dropped (see [`ConnectionGuard`]);
/// - `websocket.messages{channel, event, direction}` (counter): one per message received
///   (`in`) or accepted for sending (`out`);
/// - `websocket.connection.duration{channel}` (histogram, ms): one per connection, unless
///   turned off with [`WsMetricsBuilder::record_duration`].
///
/// The `event` label: a text message that is a JSON object with a string `"event"` member
/// (Phoenix-style) gives that name, bounded: with an allow-list only the listed names are kept,
/// otherwise the first 32 distinct names seen (configurable) are learned; any other name, and
/// any name longer than 32 characters or with a character outside `[A-Za-z0-9_.:-]`, counts
/// as `other`. Every other message counts as its frame type: `text`, `binary`, `ping`, `pong`,
/// `close` (or `frame`). Event names share these values: `{"event":"ping"}` and a ping frame
/// are both `ping`.
///
/// ```
/// use vigil_ws::WsMetrics;
///
/// let comments = WsMetrics::new("comments")?;
/// let presence = WsMetrics::builder("presence")
///     .allow_events(["presence_state", "presence_diff"])
///     .record_duration(false)
///     .build()?;
/// assert_eq!(presence.text_event_label(r#"{"event":"presence_diff"}"#), "presence_diff");
/// assert_eq!(presence.text_event_label(r#"{"event":"typing"}"#), "other");
///
/// assert!(WsMetrics::new("user:42 room").is_err());
/// # let _ = comments;
/// # Ok::<(), vigil_ws::WsError>(())
/// ```
#[derive(Clone)]
pub struct WsMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Arc<str>,
    options: ClassifyOptions,
    events: EventSet,
    record_duration: bool,
}

impl WsMetrics {
    /// Telemetry for `channel` with the default settings.
    ///
    /// # Errors
    ///
    /// [`WsError::InvalidChannel`] when the name is empty, longer than 64 characters or has a
    /// character outside `[A-Za-z0-9_.:-]`.
    pub fn new(channel: &str) -> Result<Self, WsError> {
        Self::builder(channel).build()
    }

    /// A builder for `channel`, to change the defaults.
    pub fn builder(channel: &str) -> WsMetricsBuilder {
        WsMetricsBuilder {
            channel: channel.to_owned(),
            allow_events: None,
            max_learned_events: DEFAULT_MAX_LEARNED_EVENTS,
            options: ClassifyOptions::default(),
            record_duration: true,
        }
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The classification limits in force.
    pub fn classify_options(&self) -> ClassifyOptions {
        self.inner.options
    }

    /// Wraps an accepted WebSocket: counts the connection now, and each message it receives
    /// or sends. See [`InstrumentedSocket`].
    pub fn wrap<S>(&self, socket: S) -> InstrumentedSocket<S> {
        InstrumentedSocket::new(socket, self.clone())
    }

    /// Counts a new connection of this channel until the returned guard is dropped, for
    /// WebSocket libraries [`wrap`](Self::wrap) does not fit. Pair it with
    /// [`record`](Self::record) for each message.
    pub fn connection_guard(&self) -> ConnectionGuard {
        ConnectionGuard::open(self.inner.channel.clone(), self.inner.record_duration)
    }

    /// Counts one message in `websocket.messages{channel, event, direction}`.
    pub fn record<M: WsMessage + ?Sized>(&self, direction: Direction, message: &M) {
        self.count(direction, self.event_label(message));
    }

    /// Counts one text message, classified by [`text_event_label`](Self::text_event_label).
    pub fn record_text(&self, direction: Direction, text: &str) {
        self.count(direction, self.text_event_label(text));
    }

    /// Counts one message by frame type alone, without reading a text message's event.
    pub fn record_frame(&self, direction: Direction, kind: FrameKind) {
        self.count(direction, kind.as_str());
    }

    /// The `event` label a message gets (learning its event name when there is room).
    pub fn event_label<M: WsMessage + ?Sized>(&self, message: &M) -> &str {
        match message.frame_kind() {
            FrameKind::Text => self.text_event_label(message.as_text().unwrap_or_default()),
            kind => kind.as_str(),
        }
    }

    /// The `event` label a text message gets: the bounded event name, `other`, or `text`
    /// (learning its event name when there is room).
    pub fn text_event_label(&self, text: &str) -> &str {
        match classify_text(text, &self.inner.options) {
            EventLabel::Event(name) => self.inner.events.resolve(name),
            EventLabel::Other => OTHER,
            EventLabel::Frame(kind) => kind.as_str(),
        }
    }

    /// The event names this channel reports: the allow-list, or the names learned so far;
    /// sorted.
    pub fn event_names(&self) -> Vec<String> {
        self.inner.events.names().into_iter().map(str::to_owned).collect()
    }

    /// Counts one message whose `event` label is already known (from
    /// [`event_label`](Self::event_label)).
    pub(crate) fn record_event(&self, direction: Direction, event: &str) {
        self.count(direction, event);
    }

    fn count(&self, direction: Direction, event: &str) {
        handles::increment(
            WEBSOCKET_MESSAGES.name,
            1,
            &[
                ("channel", &self.inner.channel),
                ("event", event),
                ("direction", direction.as_str()),
            ],
        );
    }
}

impl fmt::Debug for WsMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let events = &self.inner.events;
        f.debug_struct("WsMetrics")
            .field("channel", &self.inner.channel)
            .field("options", &self.inner.options)
            .field("allow_list", &!events.is_learning())
            .field("max_event_names", &events.capacity())
            .field("event_names", &events.names())
            .field("record_duration", &self.inner.record_duration)
            .finish()
    }
}

/// Builds a [`WsMetrics`]; from [`WsMetrics::builder`].
#[derive(Clone, Debug)]
#[must_use = "call build() to get the WsMetrics"]
pub struct WsMetricsBuilder {
    channel: String,
    allow_events: Option<Vec<String>>,
    max_learned_events: usize,
    options: ClassifyOptions,
    record_duration: bool,
}

impl WsMetricsBuilder {
    /// Reports only these event names; every other one counts as `other` and nothing is
    /// learned at run time. Names must be valid event names (see
    /// [`max_event_len`](Self::max_event_len)); at most 1024.
    pub fn allow_events<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.allow_events = Some(names.into_iter().map(|n| n.as_ref().to_owned()).collect());
        self
    }

    /// Without an allow-list: how many distinct event names are learned at run time, in
    /// order of arrival (default 32, at most 1024; 0 makes every event `other`). Past it,
    /// new names count as `other`.
    pub fn max_learned_events(mut self, max: usize) -> Self {
        self.max_learned_events = max;
        self
    }

    /// The longest event name kept, in characters (default 32, 1 to 128). Longer names count
    /// as `other`, as do names with a character outside `[A-Za-z0-9_.:-]`.
    pub fn max_event_len(mut self, max: usize) -> Self {
        self.options.max_event_len = max;
        self
    }

    /// Text messages longer than this many bytes are not parsed and count as `text`
    /// (default 64 KiB; 0 turns event classification off).
    pub fn max_parse_bytes(mut self, max: usize) -> Self {
        self.options.max_parse_bytes = max;
        self
    }

    /// Whether to record `websocket.connection.duration` for each connection (default on).
    pub fn record_duration(mut self, on: bool) -> Self {
        self.record_duration = on;
        self
    }

    /// Checks the settings and builds the [`WsMetrics`].
    ///
    /// # Errors
    ///
    /// - [`WsError::InvalidChannel`]: the channel name is empty, longer than 64 characters or
    ///   has a character outside `[A-Za-z0-9_.:-]`;
    /// - [`WsError::InvalidEventName`]: an allow-listed name is not a valid event name;
    /// - [`WsError::InvalidOption`]: `max_event_len` is not 1 to 128, or `max_learned_events`
    ///   or the allow-list is larger than 1024.
    pub fn build(self) -> Result<WsMetrics, WsError> {
        validate_channel(&self.channel)?;
        let max_event_len = self.options.max_event_len;
        if !(1..=MAX_EVENT_LEN_LIMIT).contains(&max_event_len) {
            return Err(WsError::InvalidOption {
                option: "max_event_len",
                value: max_event_len,
                accepted: "1 to 128 characters",
            });
        }
        let events = if let Some(names) = &self.allow_events {
            if names.len() > MAX_EVENT_NAMES_LIMIT {
                return Err(WsError::InvalidOption {
                    option: "allow_events",
                    value: names.len(),
                    accepted: "at most 1024 names",
                });
            }
            if let Some((name, reason)) = names
                .iter()
                .find_map(|n| event_name_problem(n, max_event_len).map(|r| (n, r)))
            {
                return Err(WsError::InvalidEventName {
                    name: name.clone(),
                    reason,
                });
            }
            EventSet::allow_list(names.iter().map(String::as_str))
        } else {
            if self.max_learned_events > MAX_EVENT_NAMES_LIMIT {
                return Err(WsError::InvalidOption {
                    option: "max_learned_events",
                    value: self.max_learned_events,
                    accepted: "0 to 1024",
                });
            }
            EventSet::learning(self.max_learned_events)
        };
        Ok(WsMetrics {
            inner: Arc::new(Inner {
                channel: Arc::from(self.channel),
                options: self.options,
                events,
                record_duration: self.record_duration,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{DEFAULT_MAX_EVENT_LEN, DEFAULT_MAX_PARSE_BYTES};

    #[test]
    fn channel_names_are_validated() {
        for ok in ["comments", "a", "room.v2:lobby_x-1", &"c".repeat(64)] {
            assert_eq!(WsMetrics::new(ok).unwrap().channel(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            (&*"c".repeat(65), "longer"),
            ("user 42", "allowed"),
            ("a\nb", "allowed"),
            ("a\"b", "allowed"),
            ("é", "allowed"),
        ] {
            let err = WsMetrics::new(bad).unwrap_err();
            assert!(matches!(err, WsError::InvalidChannel { .. }), "{bad:?}");
            let text = err.to_string();
            assert!(text.contains(why), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn options_are_validated() {
        let err = |b: WsMetricsBuilder| b.build().unwrap_err();
        assert_eq!(
            err(WsMetrics::builder("c").max_event_len(0)).to_string(),
            "WebSocket metrics option max_event_len = 0: expected 1 to 128 characters"
        );
        assert!(matches!(
            err(WsMetrics::builder("c").max_event_len(129)),
            WsError::InvalidOption { .. }
        ));
        assert!(matches!(
            err(WsMetrics::builder("c").max_learned_events(1025)),
            WsError::InvalidOption {
                option: "max_learned_events",
                ..
            }
        ));
        assert!(matches!(
            err(WsMetrics::builder("c").allow_events((0..1025).map(|i| format!("e{i}")))),
            WsError::InvalidOption {
                option: "allow_events",
                ..
            }
        ));
        assert_eq!(
            err(WsMetrics::builder("c").allow_events(["ok", "not ok"])),
            WsError::InvalidEventName {
                name: "not ok".into(),
                reason: "only A-Z, a-z, 0-9, '_', '.', ':' and '-' are allowed"
            }
        );
        assert!(matches!(
            err(WsMetrics::builder("c").max_event_len(3).allow_events(["abcd"])),
            WsError::InvalidEventName { .. }
        ));
        let m = WsMetrics::builder("c")
            .max_learned_events(1024)
            .max_event_len(128)
            .max_parse_bytes(0)
            .build()
            .unwrap();
        assert_eq!(m.classify_options().max_parse_bytes, 0);
        assert_eq!(m.text_event_label(r#"{"event":"x"}"#), "text");
        assert_eq!(DEFAULT_MAX_EVENT_LEN, 32);
        assert_eq!(DEFAULT_MAX_PARSE_BYTES, 65536);
    }

    #[test]
    fn labels_are_bounded() {
        let m = WsMetrics::builder("c").max_learned_events(2).build().unwrap();
        assert_eq!(m.text_event_label(r#"{"event":"a"}"#), "a");
        assert_eq!(m.text_event_label(r#"{"event":"bad name"}"#), "other");
        assert_eq!(m.text_event_label(r#"{"event":"b"}"#), "b");
        assert_eq!(m.text_event_label(r#"{"event":"c"}"#), "other");
        assert_eq!(m.text_event_label("plain"), "text");
        assert_eq!(m.event_names(), ["a", "b"]);
        let clone = m.clone();
        assert_eq!(clone.text_event_label(r#"{"event":"a"}"#), "a");
        assert!(format!("{m:?}").contains("event_names: [\"a\", \"b\"]"));
    }
}
