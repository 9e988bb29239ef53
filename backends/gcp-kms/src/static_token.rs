//! `GOOGLE_OAUTH_ACCESS_TOKEN`: a token minted elsewhere (e.g. by
//! `gcloud auth print-access-token`), sent as is and never refreshed, as the
//! reference's static token source does.

use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider, EntityTag};
use google_cloud_auth::errors::CredentialsError;
use http::header::{HeaderValue, AUTHORIZATION};
use http::{Extensions, HeaderMap};

use crate::errors::GcpError;

/// Credentials that always present the same bearer token.
pub(crate) struct StaticToken {
    header: HeaderValue,
    tag: EntityTag,
    universe_domain: Option<String>,
}

impl StaticToken {
    /// Fails (without echoing the token) when it cannot be a header value.
    pub(crate) fn new(token: String, universe_domain: Option<String>) -> Result<Self, GcpError> {
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.trim()))
            .map_err(|_| GcpError::BadStaticToken)?;
        header.set_sensitive(true);
        Ok(StaticToken {
            header,
            tag: EntityTag::new(),
            universe_domain,
        })
    }
}

/// The token never appears in debug output.
impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticToken").finish_non_exhaustive()
    }
}

impl CredentialsProvider for StaticToken {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.tag) {
            return Ok(CacheableResource::NotModified);
        }
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.header.clone());
        Ok(CacheableResource::New {
            entity_tag: self.tag.clone(),
            data: headers,
        })
    }

    /// A bare token carries no universe of its own: it belongs to the one
    /// the client is configured for.
    async fn universe_domain(&self) -> Option<String> {
        self.universe_domain.clone()
    }
}
