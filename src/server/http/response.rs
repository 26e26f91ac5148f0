//! Writing JSON responses as OPA writes them: the body as bytes already in Go's form, gzip when
//! the client accepts it and the body is long enough to be worth it.

use std::io::Write;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::config::GzipEncodingConfig;

/// A JSON response; `body` already ends with OPA's newline.
pub fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON response compressed when the request accepts gzip and the body reaches
/// `min_length` (OPA's `server.encoding.gzip`).
pub fn json_negotiated(
    status: StatusCode,
    body: Vec<u8>,
    request: &HeaderMap,
    gzip: &GzipEncodingConfig,
) -> Response {
    let accepts_gzip = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if !accepts_gzip || body.len() < gzip.min_length || gzip.compression_level == 0 {
        return json(status, body);
    }
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(gzip.compression_level));
    let compressed = encoder.write_all(&body).and_then(|_| encoder.finish());
    match compressed {
        Ok(bytes) => {
            let mut response = json(status, bytes);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        Err(_) => json(status, body),
    }
}
