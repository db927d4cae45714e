//! `GET /openapi.json`: the HTTP API's OpenAPI document, generated from the
//! handlers' annotations so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Datashop Logs SSE gateway", description = "Services publish logs; browsers stream many channels over one Server-Sent-Events connection."),
    paths(
        crate::stream::stream,
        crate::control::change,
        crate::publish::publish,
        crate::health::health,
        crate::stats::stats,
        crate::stats::metrics,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "logs", description = "Publish and stream logs"),
        (name = "operations", description = "Health, stats and metrics"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
