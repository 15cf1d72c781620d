//! Span and trace ids, generated as Datadog's tracers do.
//!
//! Random numbers come from `fastrand`'s per-thread generator (wyrand, seeded per thread from
//! std's `RandomState`): no lock, no system call.

/// A random, non-zero 64-bit span id.
pub(crate) fn span_id() -> u64 {
    fastrand::u64(1..)
}

/// A new 128-bit trace id for a trace started `unix_secs` after the epoch: the upper 64 bits
/// are the 32-bit unix time in seconds followed by 32 zero bits, the lower 64 bits random and
/// non-zero (Datadog's 128-bit trace id format).
pub(crate) fn trace_id(unix_secs: u64) -> u128 {
    let secs = unix_secs;
    // Truncation intended: the format keeps the low 32 bits of the seconds.
    #[allow(clippy::cast_possible_truncation)]
    let high = u64::from(secs as u32) << 32;
    (u128::from(high) << 64) | u128::from(span_id())
}

/// The `_dd.p.tid` tag value of a trace id: its upper 64 bits as 16 lowercase hex digits, or
/// `None` when they are zero (a 64-bit trace id).
pub(crate) fn tid_tag(trace_id: u128) -> Option<[u8; 16]> {
    #[allow(clippy::cast_possible_truncation)]
    let high = (trace_id >> 64) as u64;
    if high == 0 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        let nibble = (high >> (60 - 4 * i)) & 0xf;
        *b = b"0123456789abcdef"[usize::try_from(nibble).unwrap_or(0)];
    }
    Some(out)
}

/// The lower 64 bits of a trace id.
pub(crate) fn low(trace_id: u128) -> u64 {
    #[allow(clippy::cast_possible_truncation)]
    let low = trace_id as u64;
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_layout() {
        let id = trace_id(0x6543_21ab);
        assert_eq!((id >> 64) as u64, 0x6543_21ab_0000_0000);
        assert_ne!(low(id), 0);
        assert_eq!(std::str::from_utf8(&tid_tag(id).unwrap()).unwrap(), "654321ab00000000");
        assert_eq!(tid_tag(42), None);
    }

    #[test]
    fn ids_are_random_and_non_zero() {
        let ids: std::collections::HashSet<u64> = (0..10_000).map(|_| span_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(!ids.contains(&0));
    }
}
