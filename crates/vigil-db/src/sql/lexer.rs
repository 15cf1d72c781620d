//! A small SQL tokenizer: enough to find statement keywords and table names, and to tell
//! literals from everything else. It never fails and never panics: anything it does not
//! recognise becomes a one-byte punctuation token, and an unterminated string, quoted
//! identifier or comment runs to the end of the input.

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted identifier or keyword.
    Word,
    /// A quoted identifier: `"..."`, `` `...` ``, `[...]`, `U&"..."`.
    QuotedIdent,
    /// A string literal: `'...'`, `E'...'`, `X'...'`, `B'...'`, `N'...'`, `U&'...'`,
    /// `$$...$$`, `$tag$...$tag$`.
    Str,
    /// A numeric literal: `12`, `1.5e3`, `.5`, `0xFF`.
    Number,
    /// A bind parameter: `$1`, `?`, `?1`, `:name`, `@name`, `$name`.
    Param,
    /// Any other single character.
    Punct(u8),
}

impl Kind {
    /// Literal values, which normalisation replaces with `?`.
    pub(crate) fn is_literal(self) -> bool {
        matches!(self, Kind::Str | Kind::Number)
    }
}

/// One token: its kind, its text in the input (quotes included) and whether whitespace or a
/// comment preceded it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
    pub(crate) gap_before: bool,
}

impl Token<'_> {
    /// Whether this is the unquoted word `keyword` (ASCII case-insensitive).
    pub(crate) fn is(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    /// Whether this is the punctuation character `c`.
    pub(crate) fn is_punct(&self, c: u8) -> bool {
        self.kind == Kind::Punct(c)
    }
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Keywords after which `[` starts a bracket-quoted identifier (`FROM [dbo].[t]`); after any
/// other word it is a subscript (`arr[1]`, `ARRAY[1, 2]`).
const KEYWORDS_BEFORE_NAMES: &[&str] = &[
    "all",
    "and",
    "as",
    "between",
    "by",
    "call",
    "case",
    "delete",
    "distinct",
    "else",
    "exec",
    "execute",
    "exists",
    "from",
    "group",
    "having",
    "in",
    "index",
    "insert",
    "into",
    "is",
    "join",
    "like",
    "merge",
    "not",
    "on",
    "or",
    "order",
    "returning",
    "select",
    "set",
    "table",
    "then",
    "truncate",
    "update",
    "using",
    "values",
    "view",
    "when",
    "where",
    "with",
];

/// The tokenizer. Cheap to clone (for lookahead).
#[derive(Clone, Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// Whether the previous token may be followed by a subscript (`a[1]`), in which case `[`
    /// is punctuation rather than the start of a bracket-quoted identifier.
    prev_subscriptable: bool,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            prev_subscriptable: false,
        }
    }

    /// The byte offset of the next unread character.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    /// Skips whitespace and comments; returns whether there were any.
    fn skip_gap(&mut self) -> bool {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        loop {
            match (self.byte(self.pos), self.byte(self.pos + 1)) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'-'), Some(b'-')) => {
                    self.pos = bytes[self.pos..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |i| self.pos + i + 1);
                }
                (Some(b'/'), Some(b'*')) => {
                    // Block comments nest (PostgreSQL, the SQL standard).
                    let mut depth = 0usize;
                    while self.pos < bytes.len() {
                        match (bytes[self.pos], self.byte(self.pos + 1)) {
                            (b'/', Some(b'*')) => {
                                depth += 1;
                                self.pos += 2;
                            }
                            (b'*', Some(b'/')) => {
                                depth -= 1;
                                self.pos += 2;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => self.pos += 1,
                        }
                    }
                    self.pos = self.pos.min(bytes.len());
                }
                _ => break,
            }
        }
        self.pos > start
    }

    /// Moves past a quoted run starting at `self.pos` (on the opening quote), where a doubled
    /// closing quote is an escape, and `\` escapes the next byte when `backslash` is set.
    fn quoted(&mut self, close: u8, backslash: bool) {
        let bytes = self.src.as_bytes();
        let mut i = self.pos + 1;
        while i < bytes.len() {
            let b = bytes[i];
            if backslash && b == b'\\' {
                i += 2;
            } else if b == close {
                if bytes.get(i + 1) == Some(&close) {
                    i += 2;
                } else {
                    self.pos = i + 1;
                    return;
                }
            } else {
                i += 1;
            }
        }
        self.pos = bytes.len();
    }

    /// At `$`: a dollar-quoted string (`$$...$$`, `$tag$...$tag$`) if one starts here.
    fn dollar_quoted(&mut self) -> bool {
        let bytes = self.src.as_bytes();
        let tag_start = self.pos + 1;
        let mut i = tag_start;
        if bytes.get(i).is_some_and(|&b| is_word_start(b)) {
            while bytes.get(i).is_some_and(|&b| is_word_continue(b) && b != b'$') {
                i += 1;
            }
        }
        if bytes.get(i) != Some(&b'$') {
            return false;
        }
        let delimiter = &self.src.as_bytes()[self.pos..=i];
        let body = i + 1;
        self.pos = bytes[body..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
            .map_or(bytes.len(), |at| body + at + delimiter.len());
        true
    }

    fn number(&mut self) {
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        if bytes[i] == b'0'
            && matches!(self.byte(i + 1), Some(b'x' | b'X'))
            && self.byte(i + 2).is_some_and(|b| b.is_ascii_hexdigit())
        {
            i += 2;
            while self.byte(i).is_some_and(|b| b.is_ascii_hexdigit()) {
                i += 1;
            }
            self.pos = i;
            return;
        }
        while self.byte(i).is_some_and(|b| b.is_ascii_digit()) {
            i += 1;
        }
        if self.byte(i) == Some(b'.') {
            i += 1;
            while self.byte(i).is_some_and(|b| b.is_ascii_digit()) {
                i += 1;
            }
        }
        if matches!(self.byte(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.byte(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.byte(j).is_some_and(|b| b.is_ascii_digit()) {
                while self.byte(j).is_some_and(|b| b.is_ascii_digit()) {
                    j += 1;
                }
                i = j;
            }
        }
        self.pos = i;
    }

    fn word_end(&self, from: usize) -> usize {
        let mut i = from;
        while self.byte(i).is_some_and(is_word_continue) {
            i += 1;
        }
        i
    }

    fn lex(&mut self) -> Kind {
        let b = self.src.as_bytes()[self.pos];
        let next = self.byte(self.pos + 1);
        match b {
            b'\'' => {
                self.quoted(b'\'', false);
                Kind::Str
            }
            b'"' => {
                self.quoted(b'"', false);
                Kind::QuotedIdent
            }
            b'`' => {
                self.quoted(b'`', false);
                Kind::QuotedIdent
            }
            b'[' if !self.prev_subscriptable => {
                self.quoted(b']', false);
                Kind::QuotedIdent
            }
            b'e' | b'E' if next == Some(b'\'') => {
                self.pos += 1;
                self.quoted(b'\'', true);
                Kind::Str
            }
            b'x' | b'X' | b'b' | b'B' | b'n' | b'N' if next == Some(b'\'') => {
                self.pos += 1;
                self.quoted(b'\'', false);
                Kind::Str
            }
            b'u' | b'U' if next == Some(b'&') && matches!(self.byte(self.pos + 2), Some(b'\'' | b'"')) => {
                self.pos += 2;
                if self.byte(self.pos) == Some(b'\'') {
                    self.quoted(b'\'', false);
                    Kind::Str
                } else {
                    self.quoted(b'"', false);
                    Kind::QuotedIdent
                }
            }
            b'$' if next.is_some_and(|n| n.is_ascii_digit()) => {
                self.pos += 1;
                while self.byte(self.pos).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                Kind::Param
            }
            b'$' if self.dollar_quoted() => Kind::Str,
            b'$' | b':' | b'@'
                if next.is_some_and(is_word_start)
                    && !(b == b':' && self.pos > 0 && self.byte(self.pos - 1) == Some(b':')) =>
            {
                self.pos = self.word_end(self.pos + 1);
                Kind::Param
            }
            b'?' => {
                self.pos += 1;
                while self.byte(self.pos).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                Kind::Param
            }
            b'0'..=b'9' => {
                self.number();
                Kind::Number
            }
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                self.number();
                Kind::Number
            }
            _ if is_word_start(b) => {
                self.pos = self.word_end(self.pos);
                Kind::Word
            }
            _ => {
                self.pos += 1;
                Kind::Punct(b)
            }
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let gap_before = self.skip_gap();
        if self.pos >= self.src.len() {
            return None;
        }
        let start = self.pos;
        let kind = self.lex();
        // Every branch stops on an ASCII byte or the end, so `pos` is a char boundary; the
        // fallback keeps this total should that ever not hold.
        let end = if self.src.is_char_boundary(self.pos) {
            self.pos
        } else {
            self.pos = self.src.len();
            self.pos
        };
        self.prev_subscriptable = match kind {
            Kind::Word => !KEYWORDS_BEFORE_NAMES
                .iter()
                .any(|k| self.src[start..end].eq_ignore_ascii_case(k)),
            Kind::QuotedIdent | Kind::Param | Kind::Punct(b')' | b']') => true,
            _ => false,
        };
        Some(Token {
            kind,
            text: self.src.get(start..end).unwrap_or(""),
            gap_before,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        Lexer::new(sql).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn tokens() {
        assert_eq!(
            kinds("SELECT a.\"B\", 'x''y', 1.5e3, $1, ? FROM [s].t -- c\n/* a /* b */ c */;"),
            vec![
                (Kind::Word, "SELECT"),
                (Kind::Word, "a"),
                (Kind::Punct(b'.'), "."),
                (Kind::QuotedIdent, "\"B\""),
                (Kind::Punct(b','), ","),
                (Kind::Str, "'x''y'"),
                (Kind::Punct(b','), ","),
                (Kind::Number, "1.5e3"),
                (Kind::Punct(b','), ","),
                (Kind::Param, "$1"),
                (Kind::Punct(b','), ","),
                (Kind::Param, "?"),
                (Kind::Word, "FROM"),
                (Kind::QuotedIdent, "[s]"),
                (Kind::Punct(b'.'), "."),
                (Kind::Word, "t"),
                (Kind::Punct(b';'), ";"),
            ]
        );
        assert_eq!(
            kinds("$tag$ it's $$ $tag$ E'a\\'b' x::int a[1] :name"),
            vec![
                (Kind::Str, "$tag$ it's $$ $tag$"),
                (Kind::Str, "E'a\\'b'"),
                (Kind::Word, "x"),
                (Kind::Punct(b':'), ":"),
                (Kind::Punct(b':'), ":"),
                (Kind::Word, "int"),
                (Kind::Word, "a"),
                (Kind::Punct(b'['), "["),
                (Kind::Number, "1"),
                (Kind::Punct(b']'), "]"),
                (Kind::Param, ":name"),
            ]
        );
        assert_eq!(kinds("'unterminated"), vec![(Kind::Str, "'unterminated")]);
        assert_eq!(kinds("/* open"), vec![]);
    }
}
