#![allow(clippy::expect_used, clippy::unwrap_used)] // a build script that cannot pack the bundle must stop the build
//! Packs `bundles/payment` into a tar.gz in OPA's layout, embedded as `verdict run`'s default,
//! and generates the native gRPC API from `proto/verdict/v1/decisions.proto`.

use std::fs::File;
use std::path::{Path, PathBuf};

fn main() {
    pack_payment_bundle();
    compile_protos();
}

/// protox compiles the .proto in Rust, so building needs no `protoc` on the machine; the
/// descriptor set it writes also feeds gRPC server reflection.
fn compile_protos() {
    let proto = "proto/verdict/v1/decisions.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"]).expect("compile decisions.proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("verdict_descriptors.pb"),
        prost::Message::encode_to_vec(&descriptors),
    )
    .expect("write descriptor set");
    tonic_prost_build::configure()
        .build_client(true)
        .compile_fds(descriptors)
        .expect("generate the gRPC code");
}

fn pack_payment_bundle() {
    let source = Path::new("bundles/payment");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let file = File::create(out.join("payment-bundle.tar.gz")).expect("create embedded bundle");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    collect(source, source, &mut files);
    files.sort();
    for (name, path) in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).expect("read bundle file");
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .expect("append bundle file");
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish embedded bundle");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("read bundle directory") {
        let path = entry.expect("bundle directory entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("inside bundle");
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
}
