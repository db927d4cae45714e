//! Where a browser's token comes from, and who the subscriber is.
//!
//! A browser `EventSource` cannot set headers, so a subscriber JWT may come
//! from, in this order: an `Authorization: Bearer` header (non-browser
//! clients), the `access_token` query parameter when explicitly allowed
//! (weaker: URLs get logged), or the configured cookie (HttpOnly, sent with
//! `withCredentials`). An explicit token wins over the ambient cookie, so a
//! client that fetched a fresh token is not held back by a stale cookie.

use axum::http::{header, HeaderMap};

use super::grants::Grants;
use super::jwt::JwtVerifier;
use crate::error::AppError;

/// An authenticated (or explicitly anonymous) subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: Option<String>,
    /// When the stream must end (`exp`), seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    pub grants: Grants,
}

/// Subscriber authentication settings.
#[derive(Debug, Clone)]
pub struct SubscriberAuth {
    pub verifier: Option<JwtVerifier>,
    pub allow_anonymous: bool,
    pub cookie: String,
    pub allow_query_token: bool,
}

impl SubscriberAuth {
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Principal, AppError> {
        if query_token.is_some() && !self.allow_query_token {
            return Err(AppError::bad_request(
                "query_token_disabled",
                "tokens in the URL are disabled on this gateway; send the token in a cookie or the Authorization header",
            ));
        }
        let token = match super::bearer_token(headers) {
            Some(header_token) => Some(header_token?),
            None => query_token.or_else(|| cookie(headers, &self.cookie)),
        };
        match (token, &self.verifier) {
            (Some(token), Some(verifier)) => {
                let verified = verifier.verify(token).map_err(|e| AppError::Unauthorized {
                    code: e.code(),
                    message: e.to_string(),
                })?;
                Ok(Principal {
                    user: verified.user,
                    expires_at: Some(verified.expires_at),
                    grants: verified.grants,
                })
            }
            // Without a verifier there is nothing a token could prove.
            (_, None) | (None, Some(_)) if self.allow_anonymous => Ok(Principal {
                user: None,
                expires_at: None,
                grants: Grants::Everything,
            }),
            _ => Err(AppError::Unauthorized {
                code: "missing_token",
                message: format!(
                    "this stream needs a token: a `{}` cookie, an Authorization header{}",
                    self.cookie,
                    if self.allow_query_token {
                        " or ?access_token="
                    } else {
                        ""
                    }
                ),
            }),
        }
    }
}

/// The value of cookie `name`, if the request carries it.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .and_then(|c| c.value_raw())
}
