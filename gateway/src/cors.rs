//! Cross-origin access for browser apps served from another origin.
//!
//! `*` allows any origin without credentials (cookies are never sent to a
//! wildcard). Exact origins are allowed with credentials, which a
//! cookie-authenticated `EventSource` (`withCredentials: true`) needs.

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::ConfigError;

const ALLOWED_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static("last-event-id"),
    HeaderName::from_static(crate::control::SECRET_HEADER),
];

/// The CORS layer for the configured origins, or `None` when cross-origin
/// access is not configured (same-origin only).
pub fn layer(origins: &[String]) -> Result<Option<CorsLayer>, ConfigError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(ALLOWED_HEADERS)
        .max_age(std::time::Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return Ok(Some(base.allow_origin(AllowOrigin::any())));
    }
    let mut allowed = Vec::with_capacity(origins.len());
    for origin in origins {
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.ends_with('/')
            && origin
                .split("://")
                .nth(1)
                .is_some_and(|host| !host.is_empty() && !host.contains('/'));
        let value = HeaderValue::from_str(origin).ok().filter(|_| valid);
        allowed.push(value.ok_or_else(|| ConfigError::CorsOrigin(origin.clone()))?);
    }
    Ok(Some(
        base.allow_origin(AllowOrigin::list(allowed))
            .allow_credentials(true),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_origins() {
        assert!(layer(&[]).unwrap().is_none());
        assert!(layer(&["*".into()]).unwrap().is_some());
        assert!(layer(&[
            "https://app.example.com".into(),
            "http://localhost:5173".into()
        ])
        .unwrap()
        .is_some());
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://",
            "https://a/b",
        ] {
            assert!(layer(&[bad.into()]).is_err(), "{bad} accepted");
        }
    }
}
