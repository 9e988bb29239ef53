//! Choosing credentials in the reference's order, so a machine set up for
//! `sops` works unchanged: `GOOGLE_CREDENTIALS` (a file path or the JSON
//! itself), then `GOOGLE_OAUTH_ACCESS_TOKEN`, then Application Default
//! Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, the
//! metadata server).

use std::fmt;
use std::path::Path;

use google_cloud_auth::credentials::{
    external_account, impersonated, service_account, user_account, Builder, Credentials,
};
use serde_json::Value;

use crate::errors::GcpError;
use crate::static_token::StaticToken;

/// Service account JSON or its path, as the reference reads it.
pub(crate) const CREDENTIALS_ENV: &str = "GOOGLE_CREDENTIALS";
/// A bare OAuth access token.
pub(crate) const TOKEN_ENV: &str = "GOOGLE_OAUTH_ACCESS_TOKEN";

/// Where the credentials came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// `GOOGLE_CREDENTIALS`.
    CredentialsEnv,
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`.
    TokenEnv,
    /// Application Default Credentials.
    Adc,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::CredentialsEnv => CREDENTIALS_ENV,
            Source::TokenEnv => TOKEN_ENV,
            Source::Adc => "Application Default Credentials",
        })
    }
}

/// The credentials to use and where they came from.
pub(crate) fn from_env(universe_domain: Option<&str>) -> Result<(Credentials, Source), GcpError> {
    if let Some(value) = non_empty_var(CREDENTIALS_ENV) {
        return Ok((from_json_or_path(&value)?, Source::CredentialsEnv));
    }
    if let Some(token) = non_empty_var(TOKEN_ENV) {
        let token = StaticToken::new(token, universe_domain.map(str::to_string))?;
        return Ok((token.into(), Source::TokenEnv));
    }
    let mut adc = Builder::default();
    if let Some(domain) = universe_domain {
        adc = adc.with_universe_domain(domain);
    }
    let credentials = adc
        .build()
        .map_err(|e| GcpError::credentials_build(Source::Adc, &e))?;
    Ok((credentials, Source::Adc))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The reference treats the value as a path when such a file exists, and as
/// the JSON document otherwise.
fn from_json_or_path(value: &str) -> Result<Credentials, GcpError> {
    let text = if Path::new(value).is_file() {
        std::fs::read_to_string(value).map_err(|e| GcpError::CredentialsFile {
            path: value.to_string(),
            error: e.to_string(),
        })?
    } else {
        value.to_string()
    };
    // Only the position of a syntax error is reported: serde's messages can
    // quote parts of the (secret) document.
    let json: Value = serde_json::from_str(&text).map_err(|e| GcpError::CredentialsJson {
        detail: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
    })?;
    from_json(json)
}

/// Builds the credential type the document declares, as ADC would.
fn from_json(json: Value) -> Result<Credentials, GcpError> {
    let kind = json
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let built = match kind.as_str() {
        "service_account" => service_account::Builder::new(json).build(),
        "authorized_user" => user_account::Builder::new(json).build(),
        "external_account" => external_account::Builder::new(json).build(),
        "impersonated_service_account" => impersonated::Builder::new(json).build(),
        other => {
            return Err(GcpError::CredentialsJson {
                detail: format!(
                    "unsupported credential type {other:?} (expected service_account, \
                     authorized_user, external_account or impersonated_service_account)"
                ),
            })
        }
    };
    built.map_err(|e| GcpError::credentials_build(Source::CredentialsEnv, &e))
}
