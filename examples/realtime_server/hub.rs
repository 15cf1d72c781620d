//! One broadcast channel per video: new comments go to every subscriber of that video.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

/// Messages a subscriber that falls this far behind loses (it is told, and resumes).
const BACKLOG: usize = 256;

/// The per-video broadcast channels.
#[derive(Clone, Default)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<i64, broadcast::Sender<Arc<str>>>>>,
}

impl Hub {
    /// Subscribes to `video_id`'s messages.
    pub fn subscribe(&self, video_id: i64) -> broadcast::Receiver<Arc<str>> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels
            .entry(video_id)
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

    /// Sends `message` to `video_id`'s subscribers; returns how many got it.
    pub fn publish(&self, video_id: i64, message: Arc<str>) -> usize {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = channels.get(&video_id) else {
            return 0;
        };
        if let Ok(n) = sender.send(message) {
            n
        } else {
            // Nobody listens any more: forget the channel.
            channels.remove(&video_id);
            0
        }
    }

    /// Forgets `video_id`'s channel when its last subscriber left.
    pub fn release(&self, video_id: i64) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if channels.get(&video_id).is_some_and(|s| s.receiver_count() == 0) {
            channels.remove(&video_id);
        }
    }
}
