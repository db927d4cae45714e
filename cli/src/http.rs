//! What the CLI needs from HTTP: one client, the bearer token, and turning
//! an error answer (`{"error":{"code","message"}}`) into a [`Failure`].

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::exit::Failure;

/// Connection attempts give up after this long (then the caller retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn client() -> Result<reqwest::Client, Failure> {
    // One process-wide TLS provider; a second install is a no-op error.
    #[cfg(feature = "tls")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("logs-sse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Usage(format!("cannot create the HTTP client: {e}")))
}

/// The gateway's base URL without a trailing slash: `http://` (a node) or,
/// when built with the `tls` feature, `https://` (the proxy; the system's
/// CA certificates, or the bundle named by `SSL_CERT_FILE`).
pub fn base_url(gateway: &str) -> Result<String, Failure> {
    let base = gateway.trim_end_matches('/');
    if base.starts_with("http://") || (cfg!(feature = "tls") && base.starts_with("https://")) {
        Ok(base.to_owned())
    } else if base.starts_with("https://") {
        Err(Failure::Usage(format!(
            "{base}: this logs-sse was built without TLS (cargo build -p logs-sse-cli --features tls)"
        )))
    } else {
        Err(Failure::Usage(format!(
            "--gateway must be an http:// or https:// URL, got {gateway:?}"
        )))
    }
}

pub fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// An error with its causes (`reqwest` keeps the useful part, such as a
/// refused connection or an untrusted certificate, in the sources).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// `code: message` of a JSON error body, or the status and raw text.
pub fn describe(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => format!("{} {}: {}", status.as_u16(), error.code, error.message),
        Err(_) => {
            let text: String = body.trim().chars().take(200).collect();
            format!("{status} {text}")
        }
    }
}

/// What to do with an unsuccessful answer.
#[derive(Debug)]
pub enum Verdict {
    /// Temporary: try again after the given delay, if the server named one.
    Retry(String, Option<Duration>),
    /// Permanent.
    Fail(Failure),
}

/// Classifies an error answer; reads its body.
pub async fn verdict(response: Response) -> Verdict {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let message = describe(status, &body);
    match status {
        StatusCode::UNAUTHORIZED => Verdict::Fail(Failure::Unauthorized(message)),
        StatusCode::FORBIDDEN => Verdict::Fail(Failure::Forbidden(message)),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
            Verdict::Retry(message, retry_after)
        }
        s if s.is_server_error() => Verdict::Retry(message, retry_after),
        _ => Verdict::Fail(Failure::Usage(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_json_errors_and_plain_bodies() {
        let json = r#"{"error":{"code":"invalid_token","message":"token expired"}}"#;
        assert_eq!(
            describe(StatusCode::UNAUTHORIZED, json),
            "401 invalid_token: token expired"
        );
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, "upstream down\n"),
            "502 Bad Gateway upstream down"
        );
    }

    #[test]
    fn accepts_http_and_https_urls() {
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        let https = base_url("https://h/");
        if cfg!(feature = "tls") {
            assert_eq!(https.unwrap(), "https://h");
        } else {
            assert!(matches!(https, Err(Failure::Usage(m)) if m.contains("--features tls")));
        }
        assert!(matches!(base_url("h:1"), Err(Failure::Usage(_))));
    }
}
