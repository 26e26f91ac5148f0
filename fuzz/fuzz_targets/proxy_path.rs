//! Fuzzes the path normaliser the authorizing proxy (and ext_authz's `normalize-path`) puts in
//! front of every policy: any text in, and what comes out must be a normal form: absolute, no
//! empty, `.` or `..` segment, no separator smuggled in an escape, and normalising it again
//! changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verdict::server::grpc::ext_authz::normalize::normalize_target;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(normal) = normalize_target(target) else {
        return;
    };
    let path = normal.split_once('?').map_or(normal.as_str(), |(p, _)| p);
    assert!(path.starts_with('/'), "{target:?} -> {normal:?}");
    let inner = path.trim_start_matches('/').trim_end_matches('/');
    if !inner.is_empty() {
        for segment in inner.split('/') {
            assert!(
                !segment.is_empty() && segment != "." && segment != "..",
                "{target:?} -> {normal:?}"
            );
        }
    }
    let lower = path.to_ascii_lowercase();
    assert!(!lower.contains("%2f") && !lower.contains("%5c") && !path.contains('\\'));
    assert_eq!(normalize_target(&normal).as_deref(), Ok(normal.as_str()), "{target:?}");
});
