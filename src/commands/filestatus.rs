//! `rsops filestatus FILE`: is this file encrypted? As `sops filestatus`
//! (3.9+): `{"encrypted":true}` when it has sops metadata with a MAC,
//! `{"encrypted":false}` when it has none; a file that cannot be read or
//! parsed is an error (exit 1, as the reference).

use std::process::ExitCode;

use super::input::Input;
use super::{write_stdout, Failure};
use crate::cli::{Cli, FilestatusArgs};

/// Runs `rsops filestatus`. Nothing is decrypted and no key is needed.
pub fn run(cli: &Cli, args: &FilestatusArgs) -> Result<ExitCode, Failure> {
    // The reference reads `-` as a file of that name, not standard input.
    let file = if args.file.as_os_str() == "-" {
        std::path::Path::new("./-")
    } else {
        args.file.as_path()
    };
    let input = Input::new(cli, Some(file), None, args.input_type.as_deref(), None)?;
    let bytes = input.read()?;
    let encrypted =
        rsops::is_encrypted(&bytes, input.input_format).map_err(|source| Failure::Decrypt {
            input: input.display(),
            source,
        })?;
    write_stdout(format!("{{\"encrypted\":{encrypted}}}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
