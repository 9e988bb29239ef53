//! `rsops decrypt`: print (or write) the plaintext of a file.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use rsops::extract::{self, ExtractError, Target};
use rsops::formats::{Format, FormatError};
use rsops::tree::Value;
use zeroize::Zeroizing;

use super::input::Input;
use super::Failure;
use crate::cli::{Cli, DecryptArgs};

/// Runs `rsops decrypt`.
pub async fn run(cli: &Cli, args: &DecryptArgs) -> Result<ExitCode, Failure> {
    let input = Input::new(
        cli,
        args.file.as_deref(),
        args.filename_override.as_deref(),
        args.input.input_type.as_deref(),
        args.input.output_type.as_deref(),
    )?;
    let steps = match &args.extract {
        Some(path) => extract::parse_path(path).map_err(|e| Failure::new(91, e.to_string()))?,
        None => Vec::new(),
    };
    let mut decrypted = input.decrypt(&args.input).await?;
    let dump_failure = |e: FormatError| {
        let hint = if input.output_format == Format::Binary {
            "\n\nhint: this is likely not an encrypted binary file; choose the format with --output-type"
        } else {
            ""
        };
        Failure::new(4, format!("cannot print the plaintext: {e}{hint}"))
    };
    let output = if steps.is_empty() {
        Zeroizing::new(
            input
                .output_format
                .emit(&decrypted.document, input.emit)
                .map_err(dump_failure)?,
        )
    } else {
        let Some(root) = decrypted.document.branches.first_mut() else {
            return Err(Failure::new(1, "the file has no document to extract from"));
        };
        let target = extract::find(root, &steps)
            .map_err(|e: ExtractError| Failure::new(1, e.to_string()))?;
        match target {
            Target::Map(map) => {
                let map = map.clone();
                *root = map;
                Zeroizing::new(
                    input
                        .output_format
                        .emit(&decrypted.document, input.emit)
                        .map_err(dump_failure)?,
                )
            }
            Target::Value(Value::Str(s)) => Zeroizing::new(s.as_bytes().to_vec()),
            Target::Value(value) => Zeroizing::new(
                input
                    .output_format
                    .emit_value(value, input.emit)
                    .map_err(dump_failure)?,
            ),
        }
    };
    match &args.output {
        Some(path) => write_private(path, &output)?,
        None => super::write_stdout(&output)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` with mode 0600, atomically: a temporary file in
/// the same directory is renamed over the target, so readers never see a
/// partial file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(3, format!("cannot write {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".rsops-")
        .tempfile_in(dir)
        .map_err(fail)?;
    temp.write_all(bytes).map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
