//! `rsops decrypt`: print (or write) the plaintext of a file.

use std::process::ExitCode;

use rsops::extract::{self, ExtractError, Target};
use rsops::formats::{Format, FormatError, Printed};
use rsops::tree::{Document, Value};

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
    if args.in_place && input.path.is_none() {
        return Err(Failure::Usage {
            message: "--in-place needs a file, not standard input".into(),
            hint: None,
        });
    }
    let steps = match &args.extract {
        Some(path) => extract::parse_path(path).map_err(Failure::ExtractSyntax)?,
        None => Vec::new(),
    };
    let mut decrypted = input.decrypt(&args.input).await?;
    let dump_failure = |source: FormatError| Failure::Print {
        source,
        as_binary: input.output_format == Format::Binary,
    };
    let output: Printed = if steps.is_empty() {
        input
            .output_format
            .print(&decrypted.document, input.emit)
            .map_err(dump_failure)?
    } else {
        let Some(root) = decrypted.document.branches.first_mut() else {
            return Err(Failure::ExtractNotFound(ExtractError::NoDocument));
        };
        let target = extract::find(root, &steps).map_err(Failure::ExtractNotFound)?;
        match target {
            Target::Map(map) => {
                // A document of its own, wiped when dropped like the whole.
                let extracted = Document::new(vec![map.clone()]);
                input
                    .output_format
                    .print(&extracted, input.emit)
                    .map_err(dump_failure)?
            }
            Target::Value(Value::Str(s)) => Printed::from(s.as_bytes().to_vec()),
            Target::Value(value) => Printed::from(
                input
                    .output_format
                    .emit_value(value, input.emit)
                    .map_err(dump_failure)?,
            ),
        }
    };
    match (&args.output, &input.path) {
        (Some(path), _) => super::write_printed_atomically(path, &output, None)?,
        (None, Some(path)) if args.in_place => {
            super::write_printed_atomically(path, &output, super::file_mode(path))?;
        }
        (None, _) => super::write_printed_stdout(&output)?,
    }
    // The process ends next.
    std::mem::take(&mut decrypted.document).wipe_and_leak();
    Ok(ExitCode::SUCCESS)
}
