//! Publish tokens: each names the services it may publish for. Several
//! tokens per service are allowed so a token can be rotated without
//! downtime; tokens may be configured as `sha256:<hex>` digests.

use axum::http::HeaderMap;

use super::{digest, digests_match, require_bearer, SecretDigest};
use crate::error::AppError;

/// The configured publish tokens, as digests.
#[derive(Clone, Default)]
pub struct ServiceTokens {
    entries: Vec<(String, SecretDigest)>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens")
            .field(
                "services",
                &self.entries.iter().map(|(s, _)| s).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The services a presented token may publish for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    services: Vec<String>,
}

impl Publisher {
    pub fn may_publish(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    pub fn services(&self) -> &[String] {
        &self.services
    }
}

impl ServiceTokens {
    pub fn new(entries: impl IntoIterator<Item = (String, SecretDigest)>) -> Self {
        ServiceTokens {
            entries: entries.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Resolves the request's bearer token to the services it may publish for.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Publisher, AppError> {
        let presented = digest(require_bearer(headers)?);
        // Compare with every entry, without stopping early.
        let mut services = Vec::new();
        for (service, expected) in &self.entries {
            if digests_match(expected, &presented) {
                services.push(service.clone());
            }
        }
        if services.is_empty() {
            return Err(AppError::Unauthorized {
                code: "unknown_token",
                message: "the bearer token is not a known service token".into(),
            });
        }
        Ok(Publisher { services })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{authorization as headers, configured_digest};

    #[test]
    fn a_token_publishes_only_for_its_services_and_tokens_rotate() {
        let hashed = format!("sha256:{}", hex::encode(digest("token-etl-2")));
        let tokens = ServiceTokens::new([
            ("etl".to_string(), configured_digest("token-etl-1").unwrap()),
            ("etl".to_string(), configured_digest(&hashed).unwrap()),
            (
                "faas".to_string(),
                configured_digest("token-faas-1").unwrap(),
            ),
            (
                "function".to_string(),
                configured_digest("token-faas-1").unwrap(),
            ),
        ]);
        for token in ["token-etl-1", "token-etl-2"] {
            let etl = tokens
                .authenticate(&headers(&format!("Bearer {token}")))
                .unwrap();
            assert!(etl.may_publish("etl") && !etl.may_publish("faas"));
        }
        let faas = tokens
            .authenticate(&headers("bearer token-faas-1"))
            .unwrap();
        assert_eq!(faas.services(), ["faas", "function"]);
        assert_eq!(
            tokens
                .authenticate(&headers("Bearer token-etl-"))
                .unwrap_err()
                .code(),
            "unknown_token"
        );
        assert_eq!(
            tokens
                .authenticate(&headers("Basic abc"))
                .unwrap_err()
                .code(),
            "missing_token"
        );
        assert_eq!(
            tokens.authenticate(&HeaderMap::new()).unwrap_err().code(),
            "missing_token"
        );
        assert!(!format!("{tokens:?}").contains("token-"));
    }
}
