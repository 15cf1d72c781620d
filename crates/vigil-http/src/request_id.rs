//! Request ids: taken from `x-request-id` when well-formed, generated otherwise.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// The header carrying the request id, in both directions.
pub const REQUEST_ID_HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The longest request id accepted from a client.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request's id, in the request's extensions for handlers to read.
///
/// ```
/// use vigil_http::RequestId;
///
/// assert!(RequestId::parse("req-42").is_some());
/// assert!(RequestId::parse("bad id\nwith newline").is_none());
/// assert_eq!(RequestId::generate().as_str().len(), 32);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(http::HeaderValue);

impl RequestId {
    /// Accepts `value` when it is 1 to [`MAX_REQUEST_ID_LEN`] characters of
    /// `A-Z a-z 0-9 - _ . : / + = @`: anything else could inject text into logs or headers.
    pub fn parse(value: &str) -> Option<Self> {
        if is_well_formed(value.as_bytes()) {
            http::HeaderValue::from_str(value).ok().map(RequestId)
        } else {
            None
        }
    }

    /// The id from a request header value, if well-formed. The value is shared, not copied.
    pub fn from_header(value: &http::HeaderValue) -> Option<Self> {
        is_well_formed(value.as_bytes()).then(|| RequestId(value.clone()))
    }

    /// A new random id: 32 lower-case hex digits (128 bits).
    pub fn generate() -> Self {
        let bits = (u128::from(next_random()) << 64) | u128::from(next_random());
        let mut text = [0u8; 32];
        for (i, digit) in text.iter_mut().enumerate() {
            #[allow(clippy::cast_possible_truncation)] // a nibble
            let nibble = (bits >> (124 - 4 * i)) as usize & 0xf;
            *digit = HEX[nibble];
        }
        // Shared from the start: the request header, the extension and the response header
        // clone it without copying (one allocation per request).
        let value = http::HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
            .unwrap_or_else(|_| unreachable!("hex is a valid header"));
        RequestId(value)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_else(|_| unreachable!("validated ASCII"))
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &http::HeaderValue {
        &self.0
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 1 to [`MAX_REQUEST_ID_LEN`] bytes of `A-Z a-z 0-9 - _ . : / + = @`.
fn is_well_formed(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

/// A per-thread seed from the standard library's randomly keyed hasher.
fn seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish() | 1
}

/// splitmix64 over a per-thread state: fast, and unique ids are what matters here.
fn next_random() -> u64 {
    RNG.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_client_ids() {
        assert_eq!(RequestId::parse("abc-123_x.y:z").unwrap().as_str(), "abc-123_x.y:z");
        for bad in [
            "",
            "has space",
            "new\nline",
            "quote\"",
            "<script>",
            "ünï",
            &"a".repeat(129),
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(RequestId::parse(&"a".repeat(128)).is_some());
    }

    #[test]
    fn generated_ids_are_unique_hex() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| RequestId::generate().to_string()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
