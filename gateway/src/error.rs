//! The one error type of the HTTP layer: every failure a client can cause is
//! an [`AppError`] and is answered as `{"error":{"code","message"}}` with the
//! matching status, so callers can branch on `code` and show `message`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use logs_sse_protocol::QueryError;
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// What went wrong: a stable `code` to branch on and a `message` to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    #[schema(example = "invalid_channel")]
    pub code: &'a str,
    pub message: &'a str,
}

/// Everything the HTTP layer answers with a non-2xx status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    InvalidQuery(#[from] QueryError),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("Content-Type must be application/json or application/x-ndjson, got {0:?}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// A status without a variant of its own (408, 404, 405, 414, 431, …).
    #[error("{message}")]
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } | AppError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::PayloadTooLarge { .. } | AppError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Status { status, .. } => *status,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. }
            | AppError::Unauthorized { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::TooLarge { code, .. }
            | AppError::TooManyRequests { code, .. }
            | AppError::Unavailable { code, .. }
            | AppError::Status { code, .. } => code,
            AppError::InvalidQuery(e) => match e {
                QueryError::NoChannels => "missing_channels",
                QueryError::TooManyChannels { .. } => "too_many_channels",
                QueryError::BadChannel { .. } => "invalid_channel",
                QueryError::BadCursor { error, .. } if error.is_last() => "invalid_since",
                QueryError::BadSinceEntry { .. } | QueryError::BadCursor { .. } => "invalid_cursor",
                QueryError::SinceForUnlistedChannel { .. } => "invalid_since",
            },
            AppError::PayloadTooLarge { .. } => "body_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Internal(_) => "internal",
        }
    }

    /// Seconds for the `Retry-After` header, when the client should retry.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::Unavailable { .. } => Some(1),
            _ => None,
        }
    }

    /// The history store cannot be reached: nothing was done, retry.
    pub fn backend_unavailable(error: &crate::backend::StoreError) -> Self {
        AppError::Unavailable {
            code: "backend_unavailable",
            message: format!("{error}; retry shortly"),
        }
    }

    pub fn shutting_down() -> Self {
        AppError::Unavailable {
            code: "shutting_down",
            message: "the gateway is shutting down; retry shortly".into(),
        }
    }

    pub fn status_with(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Status {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::backend::StoreError> for AppError {
    fn from(error: crate::backend::StoreError) -> Self {
        AppError::backend_unavailable(&error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let message = self.to_string();
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code(),
                    message: &message,
                },
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
