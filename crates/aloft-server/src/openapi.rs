//! The OpenAPI document, generated from the API's types and the routes' annotations.
//! `docs/openapi.json` is this document; a test fails when it is not current.

use crate::http;
use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(title = "aloft", description = "aloft's control plane API"),
    paths(
        http::health,
        http::clusters,
        http::stop,
        http::start,
        http::down,
        http::launch,
        http::requests,
        http::request,
        http::cancel,
        http::events,
        http::background,
        http::activate,
        http::metrics,
        http::jobs,
        http::logs,
        http::cancel_jobs,
        http::autostop,
        http::endpoints,
    ),
    components(schemas(aloft_api::RequestEvent)),
    modifiers(&Token)
)]
struct Document;

/// The `token` security scheme (the server's token as a bearer token), and the answers every
/// route that needs it may give: 401 without a valid token, 503 from a server that is stopping.
struct Token;

impl utoipa::Modify for Token {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                if operation.security.is_none() {
                    continue;
                }
                for (status, description) in [
                    ("401", "No token, or a wrong one"),
                    ("503", "The server is stopping; ask a new one"),
                ] {
                    operation.responses.responses.insert(
                        status.to_owned(),
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("ApiError")))
                                    .build(),
                            )
                            .into(),
                    );
                }
            }
        }
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
