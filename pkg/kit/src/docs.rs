//! An app's API described: its OpenAPI document at `/q/openapi.yaml` (kratos' `/q/` prefix) and
//! a Swagger UI page at `/q/docs` to browse it and try its operations. The page's JS and CSS are
//! built into the binary (the `swagger-ui-dist` crate): nothing is fetched at run time.

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/q/openapi.yaml";

/// Where the page is served.
pub const DOCS_PATH: &str = "/q/docs";

/// The routes serving `openapi_yaml` and the page titled `title`.
pub fn router(title: &'static str, openapi_yaml: &'static str) -> Router {
    let page = swagger_ui_dist::ApiDefinition {
        uri_prefix: DOCS_PATH,
        api_definition: swagger_ui_dist::OpenApiSource::Uri(OPENAPI_PATH),
        title: Some(title),
    };
    Router::new()
        .route(
            OPENAPI_PATH,
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/yaml")], openapi_yaml) },
            ),
        )
        .merge(swagger_ui_dist::generate_routes(page))
}
