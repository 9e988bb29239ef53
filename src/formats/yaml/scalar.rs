//! How go-yaml prints one scalar: the text (`encode.go`) and the style its
//! emitter settles on (`yaml_emitter_analyze_scalar` and
//! `yaml_emitter_select_scalar_style` in `emitterc.go`).
//!
//! The reference builds each value node with `Node.Encode`, which emits the
//! value once and parses it back, so a node's style is the style the emitter
//! chose in that first pass; the final pass only re-checks it in context.

use std::borrow::Cow;

use base64::Engine;

use super::resolve::{resolve_plain, Resolved};
use crate::gofmt::{format_float, FloatFormat};
use crate::tree::Value;

/// The scalar styles the reference can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted.
    Plain,
    /// `'...'`.
    Single,
    /// `"..."`.
    Double,
    /// `|` block.
    Literal,
}

/// What the emitter's analysis found out about a scalar.
#[derive(Clone, Copy, Debug)]
pub struct Analysis {
    /// The value has a line break.
    pub multiline: bool,
    /// Plain style is allowed inside flow collections.
    pub flow_plain: bool,
    /// Plain style is allowed in block context.
    pub block_plain: bool,
    /// Single quotes are allowed.
    pub single: bool,
    /// Literal/folded block style is allowed.
    pub block: bool,
}

/// `is_printable` from `yamlprivateh.go`, on a decoded char.
/// Note that it rejects every character outside the Basic Multilingual
/// Plane (its byte test stops at 3-byte sequences), so such characters are
/// printed as `\U` escapes in double quotes.
pub fn is_printable(c: char) -> bool {
    matches!(c, '\u{0A}' | '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        && c != '\u{FEFF}'
}

pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `yaml_emitter_analyze_scalar` (with the emitter's `unicode` set, as the
/// reference sets it).
pub fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    // Printable ASCII (every `ENC[...]` string, most keys and plaintext
    // values): the indicator rules and where the spaces are.
    if is_graphic_ascii(value.as_bytes()) {
        return analyze_printable(value.as_bytes(), false);
    }
    if is_printable_ascii(value.as_bytes()) {
        return analyze_printable(value.as_bytes(), true);
    }
    // Other ASCII text is walked by bytes, without decoding.
    if value.is_ascii() {
        analyze_chars(value, value.bytes().map(char::from))
    } else {
        analyze_chars(value, value.chars())
    }
}

/// Whether every byte is printable ASCII other than space, checked in
/// branch-free chunks the compiler vectorizes.
fn is_graphic_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(32).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x21) < 0x5e))
    })
}

/// Whether every byte is printable ASCII, space included (as above).
fn is_printable_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(32).all(|chunk| {
        chunk
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f))
    })
}

/// [`analyze`] for a non-empty value of printable ASCII: no break can
/// lead, trail or neighbour anything, so only the indicator rules (where
/// whitespace is a space or either end) and leading or trailing spaces
/// matter. Without `spaces` (every `ENC[...]` string, most keys) `#` and
/// `:` can only be indicators first or last, so the pairs are not scanned.
fn analyze_printable(bytes: &[u8], spaces: bool) -> Analysis {
    let last = bytes.len() - 1;
    let space_at = |i: usize| i > last || bytes[i] == b' ';
    let mut flow_ind = false;
    let mut block_ind = bytes.starts_with(b"---") || bytes.starts_with(b"...");
    match bytes[0] {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
        | b'"' | b'%' | b'@' | b'`' => block_ind = true,
        b'?' | b':' => {
            flow_ind = true;
            block_ind |= space_at(1);
        }
        b'-' if space_at(1) => block_ind = true,
        _ => {}
    }
    // Past the first character: `:` before whitespace, `#` after a space.
    block_ind |= last > 0 && bytes[last] == b':';
    block_ind |= spaces && bytes.windows(2).any(|w| w == b": " || w == b" #");
    flow_ind |= bytes[1..]
        .iter()
        .any(|b| matches!(b, b',' | b'?' | b'[' | b']' | b'{' | b'}' | b':'));
    flow_ind |= block_ind;
    let edge_space = bytes[0] == b' ' || bytes[last] == b' ';
    Analysis {
        multiline: false,
        flow_plain: !flow_ind && !edge_space,
        block_plain: !block_ind && !edge_space,
        single: true,
        block: bytes[last] != b' ',
    }
}

/// The body of [`analyze`] for a non-empty value, given its characters.
fn analyze_chars(value: &str, chars: impl Iterator<Item = char>) -> Analysis {
    let mut flow_ind = false;
    let mut block_ind = false;
    if value.starts_with("---") || value.starts_with("...") {
        flow_ind = true;
        block_ind = true;
    }
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let mut chars = chars.enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let followed_by_ws = next.is_none_or(|n| n == ' ' || n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    block_ind |= followed_by_ws;
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    block_ind |= followed_by_ws;
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        let last = next.is_none();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || c == '\0' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space || space_break || tabs || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

/// `yaml_emitter_select_scalar_style` in block context.
pub fn select_style(
    style: ScalarStyle,
    value: &str,
    a: &Analysis,
    simple_key: bool,
) -> ScalarStyle {
    let mut style = style;
    if simple_key && a.multiline {
        style = ScalarStyle::Double;
    }
    if style == ScalarStyle::Plain && (!a.block_plain || (value.is_empty() && simple_key)) {
        style = ScalarStyle::Single;
    }
    if style == ScalarStyle::Single && !a.single {
        style = ScalarStyle::Double;
    }
    if style == ScalarStyle::Literal && (!a.block || simple_key) {
        style = ScalarStyle::Double;
    }
    style
}

/// go-yaml's `isOldBool`: YAML 1.1 booleans that are quoted for compatibility.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        while i < start + 2 && b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let ok = match i - start {
            1 => true,
            2 => b[start] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// The style a string node gets from `Node.Encode`: `stringv`'s choice,
/// then the first emitter pass's corrections. The analysis is returned for
/// the final pass, which would compute the same.
pub fn string_style(s: &str) -> (ScalarStyle, Analysis) {
    let style = if s.contains('\n') {
        ScalarStyle::Literal
    } else if resolve_plain(s) == Resolved::Str && !is_base60_float(s) && !is_old_bool(s) {
        ScalarStyle::Plain
    } else {
        ScalarStyle::Double
    };
    let a = analyze(s);
    (select_style(style, s, &a, false), a)
}

/// A scalar node's content as the encoder prints it.
pub struct Scalar<'a> {
    pub text: Cow<'a, str>,
    pub style: ScalarStyle,
    /// An explicit tag (only `!!binary` is ever needed).
    pub tag: Option<&'static str>,
    pub analysis: Analysis,
}

impl<'a> Scalar<'a> {
    /// A string node: its text as is, in the style `stringv` settles on.
    pub fn string(s: &'a str) -> Scalar<'a> {
        let (style, analysis) = string_style(s);
        Scalar {
            text: Cow::Borrowed(s),
            style,
            tag: None,
            analysis,
        }
    }

    /// A plain scalar such as a number.
    fn plain(text: String) -> Scalar<'a> {
        let analysis = analyze(&text);
        Scalar {
            text: Cow::Owned(text),
            style: ScalarStyle::Plain,
            tag: None,
            analysis,
        }
    }

    /// Bytes that are not UTF-8: `stringv` tags them `!!binary` and prints
    /// them in base64, split into lines (so literal style) when long.
    fn binary(bytes: &[u8]) -> Scalar<'a> {
        let text = encode_base64(bytes);
        let analysis = analyze(&text);
        let style = if text.contains('\n') {
            ScalarStyle::Literal
        } else {
            ScalarStyle::Plain
        };
        Scalar {
            style: select_style(style, &text, &analysis, false),
            text: Cow::Owned(text),
            tag: Some("!!binary"),
            analysis,
        }
    }

    /// A non-collection value's scalar.
    pub fn of(value: &'a Value) -> Scalar<'a> {
        match value {
            Value::Str(s) => Scalar::string(s),
            Value::Int(i) => Scalar::plain(i.to_string()),
            Value::Float(f) => Scalar::plain(float_text(*f)),
            Value::Bool(b) => Scalar::plain(b.to_string()),
            Value::Time(t) => Scalar::plain(t.clone()),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => Scalar::string(s),
                Err(_) => Scalar::binary(b),
            },
            Value::Null | Value::Comment(_) | Value::Map(_) | Value::List(_) => {
                Scalar::plain("null".to_string())
            }
        }
    }
}

/// go-yaml's `encodeBase64`: standard base64, in lines of 70 characters
/// each ending in a line break when there is more than one line's worth.
fn encode_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    // Base64 is ASCII, so any byte offset is a character boundary.
    for start in (0..encoded.len()).step_by(LINE) {
        out.push_str(&encoded[start..(start + LINE).min(encoded.len())]);
        out.push('\n');
    }
    out
}

/// go-yaml's `floatv`: Go's `'g'` format with YAML's infinity and NaN words.
pub fn float_text(f: f64) -> String {
    match format_float(f, FloatFormat::General).as_str() {
        "+Inf" => ".inf".into(),
        "-Inf" => "-.inf".into(),
        "NaN" => ".nan".into(),
        s => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(a: &Analysis) -> [bool; 5] {
        [a.multiline, a.flow_plain, a.block_plain, a.single, a.block]
    }

    /// The shortcut for printable ASCII agrees with the full analysis on
    /// every string of up to three characters from the interesting ones,
    /// and on realistic values.
    #[test]
    fn printable_shortcut_agrees_with_the_full_analysis() {
        let alphabet: Vec<u8> = b"#,[]{}&*!|>'\"%@`?:-.a0=/\\~^ ".to_vec();
        let mut samples: Vec<Vec<u8>> = Vec::new();
        for &a in &alphabet {
            samples.push(vec![a]);
            for &b in &alphabet {
                samples.push(vec![a, b]);
                for &c in &alphabet {
                    samples.push(vec![a, b, c]);
                }
            }
        }
        for text in [
            "---x",
            "...",
            "ENC[AES256_GCM,data:q0==,iv:aXY=,tag:dGFn,type:str]",
            "http://x:8200/v1",
            "a:b",
            "key:",
            "value 12-3 xxxx",
            " a",
            "a ",
            "a #b",
            "a: b",
            "- a",
            "? a",
            ": a",
            "--- a",
            "a , b",
        ] {
            samples.push(text.as_bytes().to_vec());
        }
        for sample in samples {
            let text = std::str::from_utf8(&sample).unwrap();
            let full = analyze_chars(text, text.chars());
            assert_eq!(
                fields(&analyze_printable(&sample, true)),
                fields(&full),
                "{text:?}"
            );
            if !sample.contains(&b' ') {
                assert_eq!(
                    fields(&analyze_printable(&sample, false)),
                    fields(&full),
                    "{text:?}"
                );
            }
        }
    }
}
