//! Extractors whose refusals are [`HttpError`]s naming what is wrong (axum's own answer in
//! plain text otherwise).

use crate::error::HttpError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; an empty body, or `null`, reads as `{}` (every body's fields may be left out).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|err| HttpError::bad_request(format!("reading the body: {err}")))?;
        let bytes: &[u8] =
            if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
                b"{}"
            } else {
                &bytes
            };
        // The path to what failed (`jobs[0]`), which serde_json's own message lacks for a
        // value of the wrong type.
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(Body)
            .map_err(|err| match err.path().to_string().as_str() {
                "." => HttpError::bad_request(format!("the JSON body: {}", err.inner())),
                path => {
                    HttpError::bad_request(format!("the JSON body, at `{path}`: {}", err.inner()))
                }
            })
    }
}

/// Query parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| Query(query.0))
            .map_err(|err| HttpError::bad_request(format!("the query: {}", err.body_text())))
    }
}
