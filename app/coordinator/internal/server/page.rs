//! The admin page, at DTM's UI path and at `/admin`. It is static: the API calls it makes carry
//! the token the operator types in.

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::service::DtmService;

/// `/` and `/admin`.
pub(super) fn router() -> Router<Arc<DtmService>> {
    Router::new()
        .route("/", get(admin_page))
        .route("/admin", get(admin_page))
}

/// The admin page: one HTML file with its CSS and JavaScript, embedded at build time.
async fn admin_page() -> impl IntoResponse {
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("admin.html"),
    )
}
