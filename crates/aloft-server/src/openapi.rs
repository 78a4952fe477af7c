//! The OpenAPI document, generated from the API's types and the routes' annotations.
//! `docs/openapi.json` is this document; a test fails when it is not current.

use crate::http;
use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "aloft", description = "aloft's control plane API"),
    paths(
        http::health,
        http::clusters,
        http::stop,
        http::start,
        http::down,
        http::requests,
        http::request,
        http::cancel,
        http::events,
        http::background,
        http::activate,
        http::metrics,
    ),
    modifiers(&Token)
)]
struct Document;

/// The `token` security scheme: the server's token as a bearer token.
struct Token;

impl utoipa::Modify for Token {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as pretty JSON (what `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    let mut document = Document::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

pub async fn document() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&openapi_json()).expect("the OpenAPI document is JSON"))
}
