//! Fuzzes the bundle reader: tar.gz bytes as a bundle server would send them, through
//! `Bundle::from_download` (tar, manifest, data files, a delta's patches applied to a serving
//! bundle) and, when they read, the compilation of their modules, as the reloader activates a
//! download.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use verdict::bundle::{Bundle, LoadOptions, Location, RawFile, Source, Verification};
use verdict::policy::{compile, CompileOptions};

/// The bundle serving when a download arrives: what a delta patches.
fn serving() -> &'static Option<Bundle> {
    static SERVING: OnceLock<Option<Bundle>> = OnceLock::new();
    SERVING.get_or_init(|| {
        let file = |path: &str, text: &str| RawFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        };
        let files = vec![
            file("/.manifest", r#"{"revision": "r1", "roots": ["a", "b"]}"#),
            file("/a/data.json", r#"{"x": [1, 2, {"y": "z"}], "m": {"k": true}}"#),
            file("/b/p.rego", "package b\n\nallow if data.a.m.k\n"),
        ];
        Bundle::from_files("fuzz", "", files, LoadOptions::default()).ok()
    })
}

fuzz_target!(|data: &[u8]| {
    let source = Source {
        name: "fuzz".into(),
        location: Location::Remote { persist_dir: None },
        verification: Verification::NoKeys,
        size_limit: None,
    };
    if let Ok(bundle) = Bundle::from_download(&source, data, LoadOptions::default(), serving().as_ref()) {
        let _ = compile(&[Arc::new(bundle)], CompileOptions::default());
    }
});
