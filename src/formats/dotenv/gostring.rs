//! Non-string values printed as the reference's `stores.ValToString` does,
//! for the formats whose values are text (dotenv and INI).
//!
//! Anything that is not a float, bool or time falls through to Go's `%v`,
//! so nested maps and lists print as Go prints a `sops.TreeBranch` or an
//! `[]interface{}`; that is what the reference writes when a nested tree is
//! converted to INI.

use crate::gofmt::{format_float, FloatFormat};
use crate::tree::{Entry, Value};

/// `stores.ValToString(value)`.
pub(in crate::formats) fn val_to_string(value: &Value) -> String {
    match value {
        Value::Float(f) => {
            let text = format_float(*f, FloatFormat::GeneralUpper);
            // An integral float gets one decimal so it is not read back as an int.
            if text.contains(['.', 'E']) || !f.is_finite() {
                text
            } else {
                text + ".0"
            }
        }
        Value::Time(t) => rfc3339_seconds(t),
        other => {
            let mut out = String::new();
            push_go_v(&mut out, other);
            out
        }
    }
}

/// Go's `%T` of the value the reference holds, for error messages.
pub(in crate::formats) fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Map(_) => "sops.TreeBranch",
        Value::List(_) => "[]interface {}",
        Value::Str(_) => "string",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Time(_) => "time.Time",
        Value::Bytes(_) => "[]uint8",
        Value::Null => "<nil>",
        Value::Comment(_) => "sops.Comment",
    }
}

/// `time.Time.Format(time.RFC3339)` from the RFC 3339 text with nanoseconds
/// that [`Value::Time`] holds: the same text without fractional seconds.
fn rfc3339_seconds(text: &str) -> String {
    match text.find('.') {
        Some(dot) => {
            let digits = text[dot + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            format!("{}{}", &text[..dot], &text[dot + 1 + digits..])
        }
        None => text.to_string(),
    }
}

/// Appends Go's `%v` of the value.
fn push_go_v(out: &mut String, value: &Value) {
    match value {
        Value::Map(map) => {
            out.push('[');
            for (i, entry) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_tree_item(out, entry);
            }
            out.push(']');
        }
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                push_go_v(out, item);
            }
            out.push(']');
        }
        Value::Str(s) => out.push_str(s),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&format_float(*f, FloatFormat::General)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Time(t) => out.push_str(&time_string(t)),
        Value::Bytes(bytes) => {
            let numbers: Vec<String> = bytes.iter().map(u8::to_string).collect();
            out.push('[');
            out.push_str(&numbers.join(" "));
            out.push(']');
        }
        Value::Null => out.push_str("<nil>"),
        Value::Comment(c) => {
            out.push('{');
            out.push_str(&c.text);
            out.push('}');
        }
    }
}

/// `%v` of a `sops.TreeItem{Key, Value}` struct.
fn push_tree_item(out: &mut String, entry: &Entry) {
    out.push('{');
    match entry {
        Entry::Pair(key, value) => {
            out.push_str(key);
            out.push(' ');
            push_go_v(out, value);
        }
        Entry::Comment(c) => {
            out.push('{');
            out.push_str(&c.text);
            out.push_str("} <nil>");
        }
    }
    out.push('}');
}

/// `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`. A `Z`
/// offset is taken to be UTC; other offsets have no zone name, so Go repeats
/// the numeric offset.
fn time_string(text: &str) -> String {
    let (date_time, zone) = match text.strip_suffix('Z') {
        Some(rest) => (rest, "+0000 UTC".to_string()),
        None if text.len() >= 6 => {
            let (rest, offset) = text.split_at(text.len() - 6);
            let numeric = offset.replace(':', "");
            (rest, format!("{numeric} {numeric}"))
        }
        None => (text, String::new()),
    };
    format!("{} {zone}", date_time.replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Comment;

    #[test]
    fn floats_follow_val_to_string() {
        let v = |f| val_to_string(&Value::Float(f));
        assert_eq!(v(3.0), "3.0");
        assert_eq!(v(-0.0), "-0.0");
        assert_eq!(v(0.1), "0.1");
        assert_eq!(v(123456.0), "123456.0");
        assert_eq!(v(1e6), "1E+06");
        assert_eq!(v(1e21), "1E+21");
        assert_eq!(v(1e-7), "1E-07");
        assert_eq!(v(1.5e300), "1.5E+300");
        assert_eq!(v(f64::NAN), "NaN");
        assert_eq!(v(f64::INFINITY), "+Inf");
    }

    #[test]
    fn scalars_follow_go_v() {
        assert_eq!(val_to_string(&Value::Bool(true)), "true");
        assert_eq!(val_to_string(&Value::Int(-42)), "-42");
        assert_eq!(val_to_string(&Value::Null), "<nil>");
        assert_eq!(val_to_string(&Value::Bytes(vec![104, 105])), "[104 105]");
        assert_eq!(val_to_string(&Value::Str("a b".into())), "a b");
        let t = Value::Time("2024-01-02T03:04:05.123456Z".into());
        assert_eq!(val_to_string(&t), "2024-01-02T03:04:05Z");
        let t = Value::Time("2024-01-02T03:04:05+01:00".into());
        assert_eq!(val_to_string(&t), "2024-01-02T03:04:05+01:00");
    }

    #[test]
    fn trees_follow_go_v() {
        let tree = Value::Map(vec![
            Entry::Pair("a".into(), Value::Int(1)),
            Entry::Comment(Comment::new("c")),
            Entry::Pair(
                "b".into(),
                Value::List(vec![
                    Value::Float(1e6),
                    Value::Null,
                    Value::Comment(Comment::new("d")),
                    Value::Time("2024-01-02T03:04:05.5Z".into()),
                    Value::Time("2024-01-02T03:04:05-07:30".into()),
                ]),
            ),
        ]);
        assert_eq!(
            val_to_string(&tree),
            "[{a 1} {{c} <nil>} {b [1e+06 <nil> {d} 2024-01-02 03:04:05.5 +0000 UTC \
             2024-01-02 03:04:05 -0730 -0730]}]"
        );
        assert_eq!(val_to_string(&Value::List(vec![])), "[]");
    }
}
