//! DogStatsD-safe metric names and tags.
//!
//! A DogStatsD line is `name:value|type|#key:value,key:value` and a payload holds several lines
//! separated by `\n`. metrics-exporter-dogstatsd writes names and tags as given, so a `|`, `,`,
//! `#` or newline in a label value could end the tag list, start a new field or forge a whole
//! metric line. Everything that reaches the exporter goes through here first.
//!
//! - Names keep Datadog's metric-name alphabet: ASCII letters, digits, `_` and `.`; any other
//!   character becomes `_` (Datadog itself converts them to `_`, so nothing changes in the UI).
//!   An empty name becomes `_`.
//! - Tag keys lose `|`, `,`, `#`, `:` and control characters (newlines included) to `_`; an
//!   empty key becomes `_`.
//! - Tag values lose `|`, `,`, `#` and control characters to `_`. A `:` is kept: Datadog splits a
//!   tag at its first colon, so `url:http://a` is the tag `url` with the value `http://a`.
//!
//! Checks allocate nothing; only a name or label that needs a change is copied.

use metrics::{Key, Label};

/// Whether `b` may appear in a metric name as it is.
const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Byte classes, so a check is one table load per byte.
const NAME_OK: u8 = 1;
const BAD_IN_VALUE: u8 = 2;
const BAD_IN_KEY: u8 = 4;
/// Part of a multi-byte character: decode to check for C1 control characters.
const NON_ASCII: u8 = 8;

static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)]
        let b = i as u8;
        let mut class = 0;
        if is_name_byte(b) {
            class |= NAME_OK;
        }
        if b >= 0x80 {
            class |= NON_ASCII;
        } else if matches!(b, b'|' | b',' | b'#') || b < 0x20 || b == 0x7f {
            class |= BAD_IN_VALUE | BAD_IN_KEY;
        } else if b == b':' {
            class |= BAD_IN_KEY;
        }
        table[i] = class;
        i += 1;
    }
    table
};

/// The union of the classes of the bytes of `s`.
fn classes(s: &str) -> u8 {
    s.bytes().fold(0, |acc, b| acc | CLASS[b as usize])
}

/// Whether `c` must be replaced in a tag key.
fn is_bad_tag_key_char(c: char) -> bool {
    matches!(c, '|' | ',' | '#' | ':') || c.is_control()
}

/// Whether `c` must be replaced in a tag value.
fn is_bad_tag_value_char(c: char) -> bool {
    matches!(c, '|' | ',' | '#') || c.is_control()
}

/// Whether `s` needs no replacement in a tag: a byte scan, decoding characters only when a
/// non-ASCII byte is present (C1 control characters are two bytes in UTF-8).
fn tag_is_clean(s: &str, colon_is_bad: bool) -> bool {
    let found = classes(s);
    if found & NON_ASCII != 0 {
        if colon_is_bad {
            !s.contains(is_bad_tag_key_char)
        } else {
            !s.contains(is_bad_tag_value_char)
        }
    } else {
        found & (if colon_is_bad { BAD_IN_KEY } else { BAD_IN_VALUE }) == 0
    }
}

/// Whether `name` is a valid metric name as it is.
pub(crate) fn name_is_clean(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| CLASS[b as usize] & NAME_OK != 0)
}

/// `name` with every character outside `[A-Za-z0-9_.]` replaced by `_`.
pub(crate) fn clean_name(name: &str) -> String {
    if name.is_empty() {
        return "_".to_owned();
    }
    name.chars()
        .map(|c| if c.is_ascii() && is_name_byte(c as u8) { c } else { '_' })
        .collect()
}

/// Whether `key` is a valid tag key as it is.
pub(crate) fn tag_key_is_clean(key: &str) -> bool {
    !key.is_empty() && tag_is_clean(key, true)
}

/// Whether `value` is a valid tag value as it is.
pub(crate) fn tag_value_is_clean(value: &str) -> bool {
    tag_is_clean(value, false)
}

/// `key` made a valid tag key.
pub(crate) fn clean_tag_key(key: &str) -> String {
    if key.is_empty() {
        return "_".to_owned();
    }
    key.chars()
        .map(|c| if is_bad_tag_key_char(c) { '_' } else { c })
        .collect()
}

/// `value` made a valid tag value.
pub(crate) fn clean_tag_value(value: &str) -> String {
    value
        .chars()
        .map(|c| if is_bad_tag_value_char(c) { '_' } else { c })
        .collect()
}

/// A DogStatsD-safe copy of `key`, or `None` when `key` is safe as it is (the common case, which
/// allocates nothing).
pub(crate) fn clean_key(key: &Key) -> Option<Key> {
    let labels_clean = key
        .labels()
        .all(|l| tag_key_is_clean(l.key()) && tag_value_is_clean(l.value()));
    let name_clean = name_is_clean(key.name());
    if name_clean && labels_clean {
        return None;
    }
    let labels: Vec<Label> = key
        .labels()
        .map(|l| {
            if tag_key_is_clean(l.key()) && tag_value_is_clean(l.value()) {
                l.clone()
            } else {
                Label::new(clean_tag_key(l.key()), clean_tag_value(l.value()))
            }
        })
        .collect();
    if name_clean {
        Some(Key::from_parts(key.name().to_owned(), labels))
    } else {
        Some(Key::from_parts(clean_name(key.name()), labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_names_pass_untouched() {
        for n in [
            "http.request.duration",
            "a",
            "A_b.9",
            "datadog.dogstatsd.client.packets_sent",
        ] {
            assert!(name_is_clean(n), "{n}");
        }
        assert!(
            clean_key(&Key::from_parts(
                "http.request.count",
                vec![Label::new("route", "/a/{id}")]
            ))
            .is_none()
        );
    }

    #[test]
    fn names_lose_every_protocol_character() {
        assert_eq!(clean_name("a|b:c,d#e\nf\rg h"), "a_b_c_d_e_f_g_h");
        assert_eq!(clean_name("réponse.temps"), "r_ponse.temps");
        assert_eq!(clean_name(""), "_");
        assert_eq!(clean_name("x@y/z-w"), "x_y_z_w");
    }

    #[test]
    fn tag_keys_lose_separators_and_colons() {
        assert_eq!(clean_tag_key("a:b|c,d#e\nf"), "a_b_c_d_e_f");
        assert_eq!(clean_tag_key(""), "_");
        assert_eq!(clean_tag_key("route"), "route");
        assert!(!tag_key_is_clean(""));
    }

    #[test]
    fn tag_values_keep_colons_and_unicode() {
        assert_eq!(clean_tag_value("http://a:8080/x"), "http://a:8080/x");
        assert_eq!(
            clean_tag_value("x\nforged.metric:999|c|#a,b"),
            "x_forged.metric:999_c__a_b"
        );
        assert_eq!(clean_tag_value("\u{0}\t\u{85}"), "___");
        assert_eq!(clean_tag_value("café"), "café");
        assert!(tag_value_is_clean(""));
    }

    #[test]
    fn the_byte_scan_agrees_with_the_character_rules() {
        let samples = [
            "plain",
            "a|b",
            "a,b",
            "a#b",
            "a:b",
            "a\nb",
            "a\u{7f}b",
            "café",
            "caf\u{85}é",
            "x\u{9f}",
            "日本:語",
            "",
        ];
        for s in samples {
            assert_eq!(tag_is_clean(s, true), !s.contains(is_bad_tag_key_char), "{s:?}");
            assert_eq!(tag_is_clean(s, false), !s.contains(is_bad_tag_value_char), "{s:?}");
        }
        // Every single character of the first two Unicode blocks, alone and in context.
        for c in (0u32..0x800).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}b")] {
                assert_eq!(tag_is_clean(&s, true), !s.contains(is_bad_tag_key_char), "{s:?}");
                assert_eq!(tag_is_clean(&s, false), !s.contains(is_bad_tag_value_char), "{s:?}");
                assert_eq!(name_is_clean(&s), s.bytes().all(is_name_byte), "{s:?}");
            }
        }
    }

    #[test]
    fn dirty_keys_are_copied_clean_and_keep_label_order() {
        let key = Key::from_parts(
            "bad|name",
            vec![Label::new("ok", "fine"), Label::new("k#", "v,\n"), Label::new("z", "1")],
        );
        let clean = clean_key(&key).expect("needs cleaning");
        assert_eq!(clean.name(), "bad_name");
        let labels: Vec<(&str, &str)> = clean.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("ok", "fine"), ("k_", "v__"), ("z", "1")]);
    }
}
