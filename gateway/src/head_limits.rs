//! Request-head bounds answered with a JSON error: a target longer than
//! `--max-uri-bytes` gets `414 uri_too_long`, a head larger than
//! `--max-header-bytes` or with more than [`MAX_HEADERS`] headers gets
//! `431 headers_too_large`.
//!
//! hyper has limits of its own (its buffer, see `server::Settings`, and
//! its header count) and answers them with an empty body; these are lower,
//! so a client learns what went wrong. Only heads beyond hyper's limits get
//! hyper's bare answer.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// Most headers in one request.
pub const MAX_HEADERS: usize = 100;

/// The head bounds of one gateway.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
}

impl HeadLimits {
    /// The error for a request whose head is out of bounds.
    pub fn check(&self, request: &Request) -> Result<(), AppError> {
        let target = request
            .uri()
            .path_and_query()
            .map_or(0, |p| p.as_str().len());
        if target > self.max_uri_bytes {
            return Err(AppError::status_with(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!(
                    "the request target is {target} bytes; at most {} are accepted",
                    self.max_uri_bytes
                ),
            ));
        }
        let headers = request.headers();
        if headers.len() > MAX_HEADERS {
            return Err(too_large(format!(
                "the request has {} headers; at most {MAX_HEADERS} are accepted",
                headers.len()
            )));
        }
        // Name, ": ", value and CRLF of each line, plus the request line.
        let size = target
            + request.method().as_str().len()
            + 12
            + headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>();
        if size > self.max_header_bytes {
            return Err(too_large(format!(
                "the request head is {size} bytes; at most {} are accepted",
                self.max_header_bytes
            )));
        }
        Ok(())
    }
}

fn too_large(message: String) -> AppError {
    AppError::status_with(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        message,
    )
}

/// Middleware refusing out-of-bounds heads before routing.
pub async fn enforce(limits: HeadLimits, request: Request, next: Next) -> Response {
    match limits.check(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => {
            // A client that sends such heads is not worth keeping.
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}
