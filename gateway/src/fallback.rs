//! JSON bodies for errors that no handler produced: unknown paths (404),
//! wrong methods (405, with `Allow`), static files that are missing, and
//! any other error status a layer answers with a bare body. Every error a
//! client sees is `{"error":{"code","message"}}`.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The answer for a path no route or file serves.
pub async fn not_found(request: Request) -> AppError {
    not_found_error(request.uri().path())
}

fn not_found_error(path: &str) -> AppError {
    let path: String = path.chars().take(200).collect();
    AppError::status_with(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("nothing is served at {path}"),
    )
}

/// Middleware giving error responses without a JSON body one.
pub async fn json_error_bodies(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(200).collect();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, _) = response.into_parts();
    let error = match status {
        StatusCode::NOT_FOUND => not_found_error(&path),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            AppError::status_with(
                status,
                "method_not_allowed",
                format!("{method} is not allowed on {path}; allowed: {allowed}"),
            )
        }
        _ => AppError::status_with(status, code_of(status), describe(status, &method)),
    };
    let mut json = error.into_response();
    // Keep what the original answer said besides its body (Allow, CORS, …).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "request_refused",
    }
}

fn describe(status: StatusCode, method: &Method) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    format!("{method} request refused: {} {reason}", status.as_u16())
}
