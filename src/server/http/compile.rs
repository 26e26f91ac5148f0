//! OPA's Compile API (`/v1/compile`, partial evaluation) is not served: regorus has no partial
//! evaluator. Its paths answer 501 in OPA's error shape, so an OPA client reports a clear
//! "not supported" instead of failing on Go's text 404.

use axum::http::Uri;

use super::error::ApiError;

/// `POST`/`GET /v1/compile` and `/v1/compile/{path}`.
pub async fn not_supported(uri: Uri) -> ApiError {
    ApiError::not_implemented(format!(
        "{} is not supported: verdict does not implement partial evaluation (the Compile API); \
         evaluate the decision with the Data API instead",
        uri.path()
    ))
}
