//! Who may publish, who may subscribe to what, and who may administer.
//!
//! - [`service`]: publish tokens (`Authorization: Bearer`), each naming the
//!   services it may publish for, kept as SHA-256 digests.
//! - [`jwt`]: subscriber tokens (JWT), verified with a configured key.
//! - [`grants`]: what a verified subscriber may see, decided per channel.
//! - [`subscriber`]: where a browser's token comes from (header, cookie,
//!   opt-in query parameter) and the resulting [`subscriber::Principal`].
//!
//! Every secret comparison is constant time over SHA-256 digests, so timing
//! reveals neither which token matched nor how much of one did.

pub mod grants;
pub mod jwt;
pub mod service;
pub mod subscriber;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;

pub use service::{Publisher, ServiceTokens};

/// SHA-256 of a secret.
pub type SecretDigest = [u8; 32];

pub fn digest(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses a configured secret: `sha256:<64 hex digits>` is taken as the
/// digest of the real secret (so no plaintext sits in config files);
/// anything else is the plaintext secret itself.
pub fn configured_digest(value: &str) -> Result<SecretDigest, String> {
    match value.strip_prefix("sha256:") {
        Some(hex_digest) => {
            let bytes = hex::decode(hex_digest)
                .map_err(|_| "sha256: must be followed by 64 hex digits".to_owned())?;
            bytes
                .try_into()
                .map_err(|_| "sha256: must be followed by 64 hex digits".to_owned())
        }
        None if value.len() < 8 => Err("tokens must be at least 8 characters".to_owned()),
        None => Ok(digest(value)),
    }
}

pub fn digests_match(a: &SecretDigest, b: &SecretDigest) -> bool {
    bool::from(a.ct_eq(b))
}

/// Extracts the token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, AppError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let malformed = || AppError::Unauthorized {
        code: "missing_token",
        message: "send the token as `Authorization: Bearer <token>`".into(),
    };
    let parsed = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim());
    Some(parsed.ok_or_else(malformed))
}

/// The bearer token, or 401 when there is none.
pub fn require_bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    bearer_token(headers).unwrap_or_else(|| {
        Err(AppError::Unauthorized {
            code: "missing_token",
            message: "send the token as `Authorization: Bearer <token>`".into(),
        })
    })
}

/// Checks the admin bearer token against its configured digest.
pub fn require_admin(headers: &HeaderMap, admin: Option<&SecretDigest>) -> Result<(), AppError> {
    let Some(expected) = admin else {
        return Err(AppError::Forbidden {
            code: "admin_disabled",
            message: "admin endpoints are disabled: start the gateway with --admin-token".into(),
        });
    };
    let presented = require_bearer(headers)?;
    if digests_match(expected, &digest(presented)) {
        Ok(())
    } else {
        Err(AppError::Unauthorized {
            code: "unknown_token",
            message: "the bearer token is not the admin token".into(),
        })
    }
}

/// Headers with `Authorization: {value}`, for tests.
#[cfg(test)]
pub(crate) fn authorization(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::AUTHORIZATION,
        axum::http::HeaderValue::from_str(value).unwrap(),
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    use authorization as headers;

    #[test]
    fn configured_secrets_may_be_digests() {
        let plain = configured_digest("adm1n-token").unwrap();
        let hashed =
            configured_digest(&format!("sha256:{}", hex::encode(digest("adm1n-token")))).unwrap();
        assert_eq!(plain, hashed);
        assert!(configured_digest("sha256:abc").is_err());
        assert!(configured_digest("short").is_err());
    }

    #[test]
    fn admin_requires_the_configured_token() {
        let admin = configured_digest("adm1n-token").unwrap();
        assert!(require_admin(&headers("Bearer adm1n-token"), Some(&admin)).is_ok());
        assert_eq!(
            require_admin(&headers("Bearer nope"), Some(&admin))
                .unwrap_err()
                .code(),
            "unknown_token"
        );
        assert_eq!(
            require_admin(&headers("Basic x"), Some(&admin))
                .unwrap_err()
                .code(),
            "missing_token"
        );
        assert_eq!(
            require_admin(&headers("Bearer x"), None)
                .unwrap_err()
                .code(),
            "admin_disabled"
        );
    }
}
