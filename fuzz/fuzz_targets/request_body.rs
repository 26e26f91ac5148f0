//! Fuzzes the request body decoder: the bytes of a body through `read_body` (gzip included)
//! and into the input document, as the Data API reads them (JSON or YAML, envelope or bare).
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use verdict::config::Config;
use verdict::server::http::request::{
    parse_document, parse_envelope, parse_input, parse_json_param, read_body,
};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    config: Config,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .ok()?;
            Some(Fixture {
                runtime,
                config: Config::default(),
            })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the decoder, as the content type and the endpoint do.
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let yaml = mode & 1 == 1;
    let body = if mode & 2 == 2 {
        // Content-Encoding: gzip, through the same path (and limits) as the server.
        let Some(fx) = fixture() else { return };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let read = fx
            .runtime
            .block_on(read_body(&headers, Body::from(body.to_vec()), &fx.config));
        match read {
            Ok(bytes) => bytes.to_vec(),
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };
    match (mode >> 2) % 4 {
        0 => drop(parse_envelope(&body, yaml)),
        1 => drop(parse_input(&body, yaml)),
        2 => drop(parse_document(&body)),
        _ => {
            if let Ok(text) = std::str::from_utf8(&body) {
                drop(parse_json_param(text));
            }
        }
    }
});
