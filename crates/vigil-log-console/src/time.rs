//! RFC 3339 timestamps in UTC, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `t` as RFC 3339 UTC with microseconds: `2026-11-25T10:02:01.123456Z`.
/// Times before 1970 are written as the epoch.
pub fn write_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    put(&mut buf[0..4], y);
    put(&mut buf[5..7], m);
    put(&mut buf[8..10], d);
    put(&mut buf[11..13], hh);
    put(&mut buf[14..16], mm);
    put(&mut buf[17..19], ss);
    put(&mut buf[20..26], u64::from(micros));
    out.extend_from_slice(&buf);
}

/// Writes `v` as zero-padded decimal filling `dst`.
fn put(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        // `v % 10` is below 10, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (v % 10) as u8;
        *b = b'0' + digit;
        v /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64, micros: u32) -> String {
        let mut v = Vec::new();
        write_rfc3339(
            &mut v,
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)),
        );
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(fmt(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(fmt(1_795_600_921, 123_456), "2026-11-25T10:02:01.123456Z");
        assert_eq!(fmt(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
    }
}
