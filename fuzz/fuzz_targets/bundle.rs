//! Fuzzes the bundle reader: tar.gz bytes as a bundle server would send them, through
//! `Bundle::from_download` (tar, manifest, data files) and, when they read, the compilation
//! of their modules, as the reloader activates a download.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use verdict::bundle::{Bundle, LoadOptions, Location, Source, Verification};
use verdict::policy::{compile, CompileOptions};

fuzz_target!(|data: &[u8]| {
    let source = Source {
        name: "fuzz".into(),
        location: Location::Remote { persist_dir: None },
        verification: Verification::NoKeys,
        size_limit: None,
    };
    if let Ok(bundle) = Bundle::from_download(&source, data, LoadOptions::default()) {
        let _ = compile(&[Arc::new(bundle)], CompileOptions::default());
    }
});
