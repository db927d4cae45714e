//! Who may publish and who may administer.
//!
//! Publishers present a service token (`Authorization: Bearer …`); a token
//! names the services it may publish for. Tokens are compared in constant
//! time and every configured token is compared, so timing reveals neither
//! which token matched nor how much of one did.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::error::AppError;

/// The configured publish tokens.
#[derive(Clone, Default)]
pub struct ServiceTokens {
    entries: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
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
    pub fn new<'a>(pairs: impl IntoIterator<Item = &'a (String, String)>) -> Self {
        ServiceTokens {
            entries: pairs
                .into_iter()
                .map(|(service, token)| (service.clone(), token.as_bytes().to_vec()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Resolves the request's bearer token to the services it may publish for.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Publisher, AppError> {
        let presented = bearer_token(headers)?;
        let mut services = Vec::new();
        for (service, token) in &self.entries {
            if bool::from(token.as_slice().ct_eq(presented.as_bytes())) {
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

/// Extracts the token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AppError> {
    let missing = || AppError::Unauthorized {
        code: "missing_token",
        message: "send the token as `Authorization: Bearer <token>`".into(),
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// Checks the admin bearer token.
pub fn require_admin(headers: &HeaderMap, admin_token: Option<&str>) -> Result<(), AppError> {
    let Some(expected) = admin_token else {
        return Err(AppError::Forbidden {
            code: "admin_disabled",
            message: "admin endpoints are disabled: start the gateway with --admin-token".into(),
        });
    };
    let presented = bearer_token(headers)?;
    if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Unauthorized {
            code: "unknown_token",
            message: "the bearer token is not the admin token".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_token_publishes_only_for_its_services() {
        let pairs = vec![
            ("etl".to_string(), "token-etl-1".to_string()),
            ("faas".to_string(), "token-faas-1".to_string()),
            ("function".to_string(), "token-faas-1".to_string()),
        ];
        let tokens = ServiceTokens::new(&pairs);
        let etl = tokens.authenticate(&headers("Bearer token-etl-1")).unwrap();
        assert!(etl.may_publish("etl") && !etl.may_publish("faas"));
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
        assert!(!format!("{tokens:?}").contains("token-etl-1"));
    }

    #[test]
    fn admin_requires_the_configured_token() {
        assert!(require_admin(&headers("Bearer adm1n-token"), Some("adm1n-token")).is_ok());
        assert_eq!(
            require_admin(&headers("Bearer nope"), Some("adm1n-token"))
                .unwrap_err()
                .code(),
            "unknown_token"
        );
        assert_eq!(
            require_admin(&headers("Bearer x"), None)
                .unwrap_err()
                .code(),
            "admin_disabled"
        );
    }
}
