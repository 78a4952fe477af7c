//! The one place application errors become HTTP answers: a status code and an [`ApiError`]
//! body. Internal errors are logged with their whole chain and answered with it too (the
//! server is the user's own until users and roles land; then the internal half stays in the
//! log).

use aloft_api::{ApiError, ErrorCode};
use aloft_control::app::AppError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub error: ApiError,
}

impl HttpError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            error: ApiError {
                code,
                message: message.into(),
            },
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
}

impl From<AppError> for HttpError {
    fn from(err: AppError) -> HttpError {
        match err {
            AppError::NotFound(message) => HttpError::not_found(message),
            AppError::Conflict(message) => {
                HttpError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
            }
            AppError::Invalid(message) => HttpError::bad_request(message),
            AppError::Internal(err) => {
                let message = format!("{err:#}");
                tracing::error!(error = %message, "internal error");
                HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    message,
                )
            }
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.status, Json(self.error)).into_response()
    }
}
