//! Canonical compact JSON that keeps the publisher's key order and number literals.
//!
//! Webhook bodies carry `data` exactly as it was published: keys stay in the
//! order the publisher wrote them (duplicates included), and number literals are
//! copied byte for byte (`1.50` stays `1.50`, `1e5` stays `1e5`). Only
//! insignificant whitespace is removed and strings are re-escaped one canonical
//! way, so that a receiver that parses the body and writes the strings back out
//! gets the same bytes:
//!
//! - [`Escape::Utf8`] escapes strings as JavaScript's `JSON.stringify` does;
//! - [`Escape::Ascii`] escapes them as Python's
//!   `json.dumps(x, separators=(",", ":"))` does (`ensure_ascii=True`).
//!
//! In both, `"` and `\` are backslash-escaped, `\b \f \n \r \t` use their short
//! forms, other characters below U+0020 become `\u00xx` (lowercase hex), and `/`
//! is written as is. `Ascii` additionally writes every character from U+007F up
//! as `\uxxxx`, with a surrogate pair above U+FFFF.
//!
//! Parsing is strict RFC 8259: UTF-8 input, exactly one value with optional
//! surrounding whitespace, no trailing commas, comments, leading zeros, `NaN`,
//! or unpaired surrogates, and at most [`MAX_DEPTH`] nested arrays and objects.

/// How many arrays and objects may be nested inside each other.
pub const MAX_DEPTH: usize = 128;

/// How strings are written by [`canonicalize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Escape {
    /// Non-ASCII characters are written as raw UTF-8, as `JSON.stringify` does.
    Utf8,
    /// Characters from U+007F up are written as `\uxxxx`, as Python's
    /// `json.dumps` does with `ensure_ascii=True`.
    Ascii,
}

/// A body that is not valid JSON, with the byte offset where reading stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid json at byte {offset}: {kind}; check the request body")]
pub struct JsonError {
    /// Offset of the offending byte in the input (its length at end of input).
    pub offset: usize,
    /// What was wrong there.
    pub kind: JsonErrorKind,
}

/// What [`canonicalize`] found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonErrorKind {
    #[error("unexpected end of input")]
    UnexpectedEnd,
    #[error("invalid utf-8")]
    InvalidUtf8,
    #[error("expected a value")]
    ExpectedValue,
    #[error("expected a string key")]
    ExpectedKey,
    #[error("expected ':'")]
    ExpectedColon,
    #[error("expected ',' or '}}'")]
    ExpectedCommaOrObjectEnd,
    #[error("expected ',' or ']'")]
    ExpectedCommaOrArrayEnd,
    #[error("unexpected data after the value")]
    TrailingData,
    #[error("invalid number")]
    InvalidNumber,
    #[error("number with a leading zero")]
    LeadingZero,
    #[error("invalid literal")]
    InvalidLiteral,
    #[error("unescaped control character in string")]
    ControlCharacter,
    #[error("invalid escape sequence")]
    InvalidEscape,
    #[error("unpaired surrogate in \\u escape")]
    LoneSurrogate,
    #[error("nested deeper than 128 arrays and objects")]
    TooDeep,
}

/// Validates `input` as JSON and writes it back compactly, keeping key order,
/// duplicate keys and number literals, with strings escaped per `escape`.
pub fn canonicalize(input: &[u8], escape: Escape) -> Result<String, JsonError> {
    let mut parser = Parser {
        input,
        pos: 0,
        // The output is rarely longer than the input; Ascii may grow past it.
        out: String::with_capacity(input.len()),
        escape,
    };
    parser.skip_whitespace();
    parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < input.len() {
        return Err(parser.error(JsonErrorKind::TrailingData));
    }
    Ok(parser.out)
}

/// Rewrites canonical [`Escape::Utf8`] text as canonical [`Escape::Ascii`]
/// text, appending it to `out`.
///
/// Outside strings canonical text is plain ASCII, and inside strings everything
/// below U+007F that needs escaping already is, so this only escapes each
/// character from U+007F up.
pub fn to_ascii(canonical_utf8: &str, out: &mut String) {
    out.reserve(canonical_utf8.len());
    let bytes = canonical_utf8.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] < 0x7f {
            i += 1;
            continue;
        }
        out.push_str(&canonical_utf8[run_start..i]);
        // `i` is on a char boundary (it follows an ASCII byte or a whole char
        // consumed below), and `rest` is not empty, so the fallback is unused.
        let rest = &canonical_utf8[i..];
        let c = rest.chars().next().unwrap_or('\u{fffd}');
        push_unicode_escape(out, c);
        i += c.len_utf8();
        run_start = i;
    }
    out.push_str(&canonical_utf8[run_start..]);
}

/// Whether canonical JSON text is an object (as opposed to an array, string,
/// number or literal).
pub fn is_object(canonical: &str) -> bool {
    canonical.starts_with('{')
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    out: String,
    escape: Escape,
}

impl Parser<'_> {
    fn error(&self, kind: JsonErrorKind) -> JsonError {
        JsonError { offset: self.pos, kind }
    }

    /// `kind` at the current byte, or `UnexpectedEnd` if there is none.
    fn unexpected(&self, kind: JsonErrorKind) -> JsonError {
        if self.pos >= self.input.len() { self.error(JsonErrorKind::UnexpectedEnd) } else { self.error(kind) }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Reads one value; `depth` is how many arrays and objects enclose it.
    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            _ => Err(self.unexpected(JsonErrorKind::ExpectedValue)),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error(JsonErrorKind::TooDeep));
        }
        self.pos += 1;
        self.out.push('{');
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.out.push('}');
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.unexpected(JsonErrorKind::ExpectedKey));
            }
            self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected(JsonErrorKind::ExpectedColon));
            }
            self.pos += 1;
            self.out.push(':');
            self.skip_whitespace();
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(',');
                    self.skip_whitespace();
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.out.push('}');
                    return Ok(());
                }
                _ => return Err(self.unexpected(JsonErrorKind::ExpectedCommaOrObjectEnd)),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error(JsonErrorKind::TooDeep));
        }
        self.pos += 1;
        self.out.push('[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.out.push(']');
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(',');
                    self.skip_whitespace();
                }
                Some(b']') => {
                    self.pos += 1;
                    self.out.push(']');
                    return Ok(());
                }
                _ => return Err(self.unexpected(JsonErrorKind::ExpectedCommaOrArrayEnd)),
            }
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), JsonError> {
        if !self.input[self.pos..].starts_with(word.as_bytes()) {
            return Err(self.error(JsonErrorKind::InvalidLiteral));
        }
        self.pos += word.len();
        self.out.push_str(word);
        Ok(())
    }

    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Checks `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` and copies it.
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error(JsonErrorKind::LeadingZero));
                }
            }
            Some(b'1'..=b'9') => {
                self.skip_digits();
            }
            _ => return Err(self.unexpected(JsonErrorKind::InvalidNumber)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.skip_digits() == 0 {
                return Err(self.unexpected(JsonErrorKind::InvalidNumber));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                return Err(self.unexpected(JsonErrorKind::InvalidNumber));
            }
        }
        for &b in &self.input[start..self.pos] {
            self.out.push(char::from(b));
        }
        Ok(())
    }

    /// Reads a string (the current byte is its opening quote) and writes it
    /// back canonically.
    fn string(&mut self) -> Result<(), JsonError> {
        self.pos += 1;
        self.out.push('"');
        loop {
            // Copy the longest run that needs no decoding: it ends only at an
            // ASCII byte, so it never splits a UTF-8 sequence.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b < 0x20 || b == b'"' || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            if self.pos > run_start {
                let run = std::str::from_utf8(&self.input[run_start..self.pos])
                    .map_err(|e| JsonError { offset: run_start + e.valid_up_to(), kind: JsonErrorKind::InvalidUtf8 })?;
                match self.escape {
                    Escape::Utf8 => self.out.push_str(run),
                    Escape::Ascii => to_ascii(run, &mut self.out),
                }
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.out.push('"');
                    return Ok(());
                }
                Some(b'\\') => self.escape_sequence()?,
                Some(_) => return Err(self.error(JsonErrorKind::ControlCharacter)),
                None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
            }
        }
    }

    /// Decodes one escape sequence (the current byte is its backslash) and
    /// writes the character canonically.
    fn escape_sequence(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                let c = match unit {
                    0xd800..=0xdbff => {
                        if !self.input[self.pos..].starts_with(b"\\u") {
                            return Err(JsonError { offset: start, kind: JsonErrorKind::LoneSurrogate });
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(JsonError { offset: start, kind: JsonErrorKind::LoneSurrogate });
                        }
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => {
                        return Err(JsonError { offset: start, kind: JsonErrorKind::LoneSurrogate });
                    }
                    _ => unit,
                };
                // Surrogates were combined or rejected above, so this is
                // always a scalar value; the fallback is unreachable.
                let c = char::from_u32(c).unwrap_or('\u{fffd}');
                push_escaped(&mut self.out, c, self.escape);
                return Ok(());
            }
            None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
            Some(_) => {
                return Err(JsonError { offset: start, kind: JsonErrorKind::InvalidEscape });
            }
        };
        self.pos += 1;
        push_escaped(&mut self.out, c, self.escape);
        Ok(())
    }

    /// Reads the four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut unit = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return Err(self.unexpected(JsonErrorKind::InvalidEscape)),
            };
            unit = (unit << 4) | u32::from(digit);
            self.pos += 1;
        }
        Ok(unit)
    }
}

/// Writes one decoded string character the canonical way.
fn push_escaped(out: &mut String, c: char, escape: Escape) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0'..='\u{1f}' => push_unicode_escape(out, c),
        '\u{7f}'.. if escape == Escape::Ascii => push_unicode_escape(out, c),
        _ => out.push(c),
    }
}

/// Writes `c` as `\uxxxx` (lowercase), or as a surrogate pair above U+FFFF.
fn push_unicode_escape(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        push_u16_escape(out, *unit);
    }
}

fn push_u16_escape(out: &mut String, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[usize::from((unit >> shift) & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Canonicalizes `input` both ways and checks the results, and that
    /// canonical output is a fixed point and converts with `to_ascii`.
    fn check(input: &str, utf8: &str, ascii: &str) {
        let got_utf8 = canonicalize(input.as_bytes(), Escape::Utf8).unwrap();
        assert_eq!(got_utf8, utf8, "utf8 for {input:?}");
        let got_ascii = canonicalize(input.as_bytes(), Escape::Ascii).unwrap();
        assert_eq!(got_ascii, ascii, "ascii for {input:?}");

        let again = canonicalize(got_utf8.as_bytes(), Escape::Utf8).unwrap();
        assert_eq!(again, got_utf8, "utf8 fixed point for {input:?}");
        let again = canonicalize(got_ascii.as_bytes(), Escape::Ascii).unwrap();
        assert_eq!(again, got_ascii, "ascii fixed point for {input:?}");
        let via_utf8 = canonicalize(got_utf8.as_bytes(), Escape::Ascii).unwrap();
        assert_eq!(via_utf8, got_ascii, "utf8 then ascii for {input:?}");
        let back = canonicalize(got_ascii.as_bytes(), Escape::Utf8).unwrap();
        assert_eq!(back, got_utf8, "ascii then utf8 for {input:?}");

        let mut converted = String::from("prefix");
        to_ascii(&got_utf8, &mut converted);
        assert_eq!(converted, format!("prefix{ascii}"), "to_ascii for {input:?}");
    }

    /// Checks that `input` is rejected at `offset` for `kind`.
    fn check_err(input: &[u8], offset: usize, kind: JsonErrorKind) {
        for escape in [Escape::Utf8, Escape::Ascii] {
            assert_eq!(
                canonicalize(input, escape),
                Err(JsonError { offset, kind }),
                "{escape:?} for {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    // The expected outputs in `structure`, `strings` and `unicode` were
    // produced by Python 3.11 `json.dumps(json.loads(x), separators=(",", ":"))`
    // (Ascii, and with ensure_ascii=False for Utf8) and by Node 20
    // `JSON.stringify(JSON.parse(x))`, which agreed with Python's Utf8 output
    // on every one of them.

    #[test]
    fn structure() {
        check(
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        );
        check(
            " \t\r\n{ \"a\" :\t1 ,\n \"b\" : [ true , false , null ] ,\r\n \"c\" : { \"d\" : \"e\" } }\n ",
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
        );
        check("{}", "{}", "{}");
        check("[]", "[]", "[]");
        check("{ }", "{}", "{}");
        check("[ \n ]", "[]", "[]");
        check(r#"[{},[],{"a":[]}]"#, r#"[{},[],{"a":[]}]"#, r#"[{},[],{"a":[]}]"#);
        check(r#""s""#, r#""s""#, r#""s""#);
        check("1", "1", "1");
        check("true", "true", "true");
        check(" null ", "null", "null");
        check("-1", "-1", "-1");
        check("0", "0", "0");
        check("1.5", "1.5", "1.5");
        check("[0,-1,42,1.5,0.25,-2.5]", "[0,-1,42,1.5,0.25,-2.5]", "[0,-1,42,1.5,0.25,-2.5]");
        check(
            r#"{"nested":{"a":[1,{"b":[2,[3,{"c":"\u00e9\n"}]]}]}}"#,
            "{\"nested\":{\"a\":[1,{\"b\":[2,[3,{\"c\":\"é\\n\"}]]}]}}",
            r#"{"nested":{"a":[1,{"b":[2,[3,{"c":"\u00e9\n"}]]}]}}"#,
        );
    }

    #[test]
    fn strings() {
        check(
            r#""\u0000\u0001\u001f\b\f\n\r\t\u0008\u000C\u000a\u000b""#,
            r#""\u0000\u0001\u001f\b\f\n\r\t\b\f\n\u000b""#,
            r#""\u0000\u0001\u001f\b\f\n\r\t\b\f\n\u000b""#,
        );
        check(r#""\/""#, r#""/""#, r#""/""#);
        check(r#""a/b""#, r#""a/b""#, r#""a/b""#);
        check(r#""say \"hi\" \\ back""#, r#""say \"hi\" \\ back""#, r#""say \"hi\" \\ back""#);
        check(r#""\u0041\u0022\u005c\u002f""#, r#""A\"\\/""#, r#""A\"\\/""#);
        check(r#""tab\there""#, r#""tab\there""#, r#""tab\there""#);
        check(r#""\u007f""#, "\"\u{7f}\"", r#""\u007f""#);
        check("\"\u{7f}\"", "\"\u{7f}\"", r#""\u007f""#);
        // Both Python and Node leave U+2028 and U+2029 raw in Utf8.
        check(r#""\u2028\u2029""#, "\"\u{2028}\u{2029}\"", r#""\u2028\u2029""#);
        check("\"\u{2028}\"", "\"\u{2028}\"", r#""\u2028""#);
    }

    #[test]
    fn unicode() {
        check(r#""é""#, r#""é""#, r#""\u00e9""#);
        check(r#""\u00e9""#, r#""é""#, r#""\u00e9""#);
        check(r#""\u00E9""#, r#""é""#, r#""\u00e9""#);
        check(r#""日本""#, r#""日本""#, r#""\u65e5\u672c""#);
        check(r#""😀""#, r#""😀""#, r#""\ud83d\ude00""#);
        check(r#""\ud83d\ude00""#, r#""😀""#, r#""\ud83d\ude00""#);
        check(r#""\uD83D\uDE00""#, r#""😀""#, r#""\ud83d\ude00""#);
        check(r#""\uffff""#, "\"\u{ffff}\"", r#""\uffff""#);
        check(r#""\udbff\udfff""#, "\"\u{10ffff}\"", r#""\udbff\udfff""#);
        check("\"\u{10ffff}\"", "\"\u{10ffff}\"", r#""\udbff\udfff""#);
        check("\"\u{feff}\"", "\"\u{feff}\"", r#""\ufeff""#);
        check(
            r#""\u0080\u00ff\u0100\u07ff\u0800""#,
            "\"\u{80}\u{ff}\u{100}\u{7ff}\u{800}\"",
            r#""\u0080\u00ff\u0100\u07ff\u0800""#,
        );
        check(
            r#"{"ключ":"значение","k":"日本語 text 😀!"}"#,
            r#"{"ключ":"значение","k":"日本語 text 😀!"}"#,
            r#"{"\u043a\u043b\u044e\u0447":"\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435","k":"\u65e5\u672c\u8a9e text \ud83d\ude00!"}"#,
        );
    }

    // Python and Node both rewrite numbers and collapse duplicate keys, and
    // Node moves integer-like keys first, so these answers are our own.
    #[test]
    fn kept_as_published() {
        check(
            "[ -0 , 1.50 , 1e5 , 1E-7 , 12345678901234567890123 , -0.0 , 0e0 , 1E+2 , 1e-0 ]",
            "[-0,1.50,1e5,1E-7,12345678901234567890123,-0.0,0e0,1E+2,1e-0]",
            "[-0,1.50,1e5,1E-7,12345678901234567890123,-0.0,0e0,1E+2,1e-0]",
        );
        check(
            r#"{"b":1,"a":2,"1":3,"10":4,"2":5}"#,
            r#"{"b":1,"a":2,"1":3,"10":4,"2":5}"#,
            r#"{"b":1,"a":2,"1":3,"10":4,"2":5}"#,
        );
        check(r#"{"a":1, "a":2}"#, r#"{"a":1,"a":2}"#, r#"{"a":1,"a":2}"#);
    }

    #[test]
    fn depth() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        check(&ok, &ok, &ok);
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        check(&objects, &objects, &objects);

        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        check_err(deep.as_bytes(), 128, JsonErrorKind::TooDeep);
        let deep = format!("{}1{}", r#"{"a":"#.repeat(129), "}".repeat(129));
        check_err(deep.as_bytes(), 128 * 5, JsonErrorKind::TooDeep);
    }

    #[test]
    fn errors() {
        use JsonErrorKind::*;
        check_err(b"", 0, UnexpectedEnd);
        check_err(b"  \n ", 4, UnexpectedEnd);
        check_err(b"[1,2,]", 5, ExpectedValue);
        check_err(br#"{"a":1,}"#, 7, ExpectedKey);
        check_err(b"{a:1}", 1, ExpectedKey);
        check_err(br#"{"a" 1}"#, 5, ExpectedColon);
        check_err(br#"{"a":1 "b":2}"#, 7, ExpectedCommaOrObjectEnd);
        check_err(b"[1 2]", 3, ExpectedCommaOrArrayEnd);
        check_err(b"[1", 2, UnexpectedEnd);
        check_err(br#"{"a":1"#, 6, UnexpectedEnd);
        check_err(br#"{"a""#, 4, UnexpectedEnd);
        check_err(br#""abc"#, 4, UnexpectedEnd);
        check_err(b"1 2", 2, TrailingData);
        check_err(b"{}{}", 2, TrailingData);
        check_err(b"01", 1, LeadingZero);
        check_err(b"-01", 2, LeadingZero);
        check_err(b"[00]", 2, LeadingZero);
        check_err(b"-", 1, UnexpectedEnd);
        check_err(b"-a", 1, InvalidNumber);
        check_err(b"1.", 2, UnexpectedEnd);
        check_err(b"1.e5", 2, InvalidNumber);
        check_err(b".5", 0, ExpectedValue);
        check_err(b"+1", 0, ExpectedValue);
        check_err(b"1e", 2, UnexpectedEnd);
        check_err(b"1e+]", 3, InvalidNumber);
        check_err(b"NaN", 0, ExpectedValue);
        check_err(b"[Infinity]", 1, ExpectedValue);
        check_err(b"tru", 0, InvalidLiteral);
        check_err(b"nul", 0, InvalidLiteral);
        check_err(b"True", 0, ExpectedValue);
        check_err(b"[1] // comment", 4, TrailingData);
        check_err(b"/* c */ 1", 0, ExpectedValue);
        check_err(b"'a'", 0, ExpectedValue);
        check_err(b"\"a\tb\"", 2, ControlCharacter);
        check_err(b"\"a\nb\"", 2, ControlCharacter);
        check_err(br#""\x""#, 1, InvalidEscape);
        check_err(br#""\u12""#, 5, InvalidEscape);
        check_err(br#""\u12g4""#, 5, InvalidEscape);
        check_err(br#""\"#, 2, UnexpectedEnd);
        check_err(br#""\ud800""#, 1, LoneSurrogate);
        check_err(br#""ab\ud800x""#, 3, LoneSurrogate);
        check_err(br#""\ud800\u0041""#, 1, LoneSurrogate);
        check_err(br#""\ud800\ud800""#, 1, LoneSurrogate);
        check_err(br#""\ude00""#, 1, LoneSurrogate);
        check_err(br#""\ud800\n""#, 1, LoneSurrogate);
        check_err(b"\"a\xffb\"", 2, InvalidUtf8);
        check_err(b"\"\xc3\"", 1, InvalidUtf8);
        check_err(b"\"\xed\xa0\x80\"", 1, InvalidUtf8); // UTF-8 encoded surrogate
        check_err(b"\"\xc3\xa9\xe6\x97\"", 3, InvalidUtf8);
        check_err(b"\xef\xbb\xbf{}", 0, ExpectedValue); // byte order mark
        check_err(b"[1,\xff]", 3, ExpectedValue);
        check_err(b"{\"a\":1}\x00", 7, TrailingData);
    }

    #[test]
    fn error_messages() {
        let err = canonicalize(br#"{"amount":1 "currency":"eur"}"#, Escape::Utf8).unwrap_err();
        assert_eq!(err.to_string(), "invalid json at byte 12: expected ',' or '}'; check the request body");
        let err = canonicalize(b"", Escape::Ascii).unwrap_err();
        assert_eq!(err.to_string(), "invalid json at byte 0: unexpected end of input; check the request body");
        let err = canonicalize(br#""\ud800""#, Escape::Utf8).unwrap_err();
        assert_eq!(err.to_string(), r"invalid json at byte 1: unpaired surrogate in \u escape; check the request body");
    }

    #[test]
    fn object_or_not() {
        for (input, expected) in
            [(r#" {"a":1} "#, true), ("{}", true), ("[{}]", false), (r#""{""#, false), ("1", false)]
        {
            let canonical = canonicalize(input.as_bytes(), Escape::Utf8).unwrap();
            assert_eq!(is_object(&canonical), expected, "{input}");
        }
    }

    #[test]
    fn to_ascii_appends() {
        let mut out = String::from("[");
        to_ascii("\"a\u{7f}é😀\"", &mut out);
        assert_eq!(out, r#"["a\u007f\u00e9\ud83d\ude00""#);
        let mut out = String::new();
        to_ascii("", &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn large_body() {
        // About 256 KiB of mixed content, checked against a simple rebuild.
        let item = r#" { "id" : 12345 , "name" : "caf\u00e9 \/ 😀 \"q\"" , "ok" : true } "#;
        let expected_item = r#"{"id":12345,"name":"café / 😀 \"q\"","ok":true}"#;
        let count = 256 * 1024 / item.len();
        let input = format!("[{}]", vec![item; count].join(","));
        let expected = format!("[{}]", vec![expected_item; count].join(","));
        let got = canonicalize(input.as_bytes(), Escape::Utf8).unwrap();
        assert_eq!(got, expected);
        let mut ascii = String::new();
        to_ascii(&got, &mut ascii);
        assert_eq!(canonicalize(input.as_bytes(), Escape::Ascii).unwrap(), ascii);
    }
}
