//! `rsops set FILE INDEX VALUE` and `rsops unset FILE INDEX` (and the
//! legacy `--set 'INDEX VALUE'`): change one path of an encrypted file in
//! place. Untouched values keep their ciphertext, so a diff shows only the
//! changed value, the MAC and `lastmodified`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use rsops::extract::{self, Step};
use rsops::formats::Format;
use rsops::rewrite::{Opened, PathEdit};
use rsops::tree::Value;
use zeroize::Zeroizing;

use super::input::{ChangeAtPath, Input};
use super::{AtomicWrite, Failure};
use crate::cli::{Cli, InputArgs, SetArgs, UnsetArgs};

/// Runs `rsops set`.
pub async fn run_set(cli: &Cli, args: &SetArgs) -> Result<ExitCode, Failure> {
    let wanted = if args.value_stdin { 2 } else { 3 };
    if args.args.len() != wanted {
        return Err(Failure::MissingArguments(if args.value_stdin {
            "Error: file specified, or index and value are missing. Need precisely 2 positional arguments since --value-stdin is used."
        } else {
            "Error: no file specified, or index and value are missing. Need precisely 3 positional arguments."
        }));
    }
    let file = Path::new(&args.args[0]);
    let path = tree_path(&args.args[1], "Invalid set index format")?;
    let json = if args.value_stdin {
        read_value(None)?
    } else if args.value_file {
        read_value(Some(Path::new(&args.args[2])))?
    } else {
        Zeroizing::new(args.args[2].clone().into_bytes())
    };
    let value = json_value(&json)?;
    drop(json);
    if args.idempotent {
        return set_if_changed(cli, file, &args.input, &path, value).await;
    }
    let mut out = AtomicWrite::keeping_mode(file);
    let edit = PathEdit::Set(&path, &value);
    let (input, opened, _lock) = open_path_change(cli, file, &args.input, edit, &mut out).await?;
    if let ChangeAtPath::ToMake(mut change) = opened {
        change.set(&path, value).map_err(|source| Failure::Update {
            input: input.display(),
            source,
        })?;
        out.write_parts(&input.seal_path_change(*change)?.parts())?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `set --idempotent`: the file is written only if the value changes,
/// which takes the plaintext of what is there.
async fn set_if_changed(
    cli: &Cli,
    file: &Path,
    args: &InputArgs,
    path: &[Step],
    value: Value,
) -> Result<ExitCode, Failure> {
    let (input, mut opened, _lock) = open(cli, file, args).await?;
    let Some(root) = opened.document.branches.first_mut() else {
        return Err(no_document(&input));
    };
    let changed = rsops::update::set(root, path, value).map_err(|source| Failure::Update {
        input: input.display(),
        source,
    })?;
    if !changed {
        return Ok(ExitCode::SUCCESS);
    }
    super::write_printed_atomically(file, &input.seal(opened)?, super::file_mode(file))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `rsops unset`.
pub async fn run_unset(cli: &Cli, args: &UnsetArgs) -> Result<ExitCode, Failure> {
    if args.args.len() != 2 {
        return Err(Failure::MissingArguments(
            "Error: no file specified, or index is missing",
        ));
    }
    let file = Path::new(&args.args[0]);
    let path = tree_path(&args.args[1], "Invalid unset index format")?;
    let mut out = AtomicWrite::keeping_mode(file);
    let (input, opened, _lock) =
        open_path_change(cli, file, &args.input, PathEdit::Unset(&path), &mut out).await?;
    if let ChangeAtPath::ToMake(mut change) = opened {
        match change.unset(&path) {
            Ok(()) => out.write_parts(&input.seal_path_change(*change)?.parts())?,
            Err(e) if e.is_not_found() && args.idempotent => return Ok(ExitCode::SUCCESS),
            Err(source) => {
                return Err(Failure::Update {
                    input: input.display(),
                    source,
                })
            }
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn no_document(input: &Input) -> Failure {
    Failure::Usage {
        message: format!("{}: the file holds no document", input.display()),
        hint: None,
    }
}

/// Parses `INDEX` (`["a"][0]`), refusing it with the reference's words.
fn tree_path(index: &str, refusal: &'static str) -> Result<Vec<Step>, Failure> {
    extract::parse_path(index).map_err(|_| Failure::InvalidSet(refusal))
}

/// The JSON value from a file or standard input (wiped when dropped).
fn read_value(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut bytes = Zeroizing::new(Vec::new());
    let (what, result) = match file {
        Some(path) => (
            path.display().to_string(),
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)),
        ),
        None => (
            "standard input".to_string(),
            std::io::stdin().read_to_end(&mut bytes),
        ),
    };
    result.map_err(|source| Failure::Read { what, source })?;
    Ok(bytes)
}

/// A JSON value as the reference inserts it: objects and arrays keep their
/// order and types as the JSON format reads them; a bare number is a float
/// (Go's `json.Unmarshal` into `interface{}`), a string, boolean or null is
/// itself. Unlike the reference, a bare array is accepted.
fn json_value(json: &[u8]) -> Result<Value, Failure> {
    let invalid = || Failure::InvalidSet("Value for --set is not valid JSON");
    serde_json::from_slice::<serde::de::IgnoredAny>(json).map_err(|_| invalid())?;
    let text = std::str::from_utf8(json).map_err(|_| invalid())?.trim();
    let structured = |bytes: &[u8]| {
        Format::Json
            .parse_plain(bytes)
            .map_err(|_| Failure::InvalidSet("Invalid --set value format"))
    };
    Ok(match text.as_bytes().first() {
        Some(b'{') => {
            let mut document = structured(text.as_bytes())?;
            Value::Map(document.branches.pop().unwrap_or_default())
        }
        Some(b'[') => {
            // Validated above as one JSON value, so this wraps nothing else.
            let wrapped = Zeroizing::new(format!("{{\"value\":{text}}}"));
            let mut document = structured(wrapped.as_bytes())?;
            match document.branches.pop().and_then(|mut map| map.pop()) {
                Some(rsops::tree::Entry::Pair(_, value)) => value,
                _ => return Err(invalid()),
            }
        }
        Some(b'"') => Value::Str(serde_json::from_str(text).map_err(|_| invalid())?),
        Some(b't') => Value::Bool(true),
        Some(b'f') => Value::Bool(false),
        Some(b'n') => Value::Null,
        _ => Value::Float(serde_json::from_str(text).map_err(|_| invalid())?),
    })
}

/// Reads and decrypts `file` for change; the returned lock is held until
/// the change is written (see [`Input::read_locked`]).
async fn open(
    cli: &Cli,
    file: &Path,
    args: &InputArgs,
) -> Result<(Input, Opened, std::fs::File), Failure> {
    let input = Input::of_file(cli, file, args)?;
    let (opened, lock) = input.open_for_change(args).await?;
    Ok((input, opened, lock))
}

/// Reads `file` for `edit`, which is made and written to `out`
/// right away when the file can be changed in pieces; the returned lock
/// is held until the change is written (see [`Input::read_locked`]).
async fn open_path_change(
    cli: &Cli,
    file: &Path,
    args: &InputArgs,
    edit: PathEdit<'_>,
    out: &mut AtomicWrite<'_>,
) -> Result<(Input, ChangeAtPath, std::fs::File), Failure> {
    let input = Input::of_file(cli, file, args)?;
    let (opened, lock) = input.open_for_path_change(args, edit, out).await?;
    if matches!(&opened, ChangeAtPath::ToMake(change) if change.is_empty()) {
        return Err(no_document(&input));
    }
    Ok((input, opened, lock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_as_the_reference_inserts_them() {
        assert!(matches!(json_value(b"5"), Ok(Value::Float(f)) if f == 5.0));
        assert!(matches!(json_value(b" \"x\" "), Ok(Value::Str(s)) if s == "x"));
        assert!(matches!(json_value(b"true"), Ok(Value::Bool(true))));
        assert!(matches!(json_value(b"null"), Ok(Value::Null)));
        assert!(matches!(json_value(br#"{"a": 1}"#), Ok(Value::Map(m)) if m.len() == 1));
        assert!(matches!(json_value(b"[1, \"x\"]"), Ok(Value::List(l)) if l.len() == 2));
        for bad in [
            &b"nojson"[..],
            b"1 2",
            b"{\"a\":1} x",
            b"",
            b"[1], \"b\": 2",
        ] {
            assert!(
                matches!(json_value(bad), Err(Failure::InvalidSet(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
