//! Bundle files as tests lay them out: gzipped tarballs (hostile ones too), directories,
//! atomic replacements and ConfigMap mounts as the kubelet publishes them.

use std::io::Write;
use std::path::Path;

/// A gzipped tarball of the given entries, written as `opa build` writes them.
pub fn tar_gz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        // append_data refuses `..`; write the raw name to build hostile archives too.
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        tar.append(&header, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A gzipped tarball with one symlink entry `name -> target` beside the given files.
pub fn tar_gz_with_symlink(files: &[(&str, &[u8])], name: &str, target: &str) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (file, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, file, *bytes).unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    tar.append_link(&mut header, name, target).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// Writes `bytes` to `path` atomically (write a sibling, then rename over), as deploy tools do.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp-write");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A minimal valid bundle: one package under root `app`, its revision, and `allow` set to
/// `allow_value`.
pub fn simple_bundle(revision: &str, allow_value: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            format!(r#"{{"revision": "{revision}", "roots": ["app"]}}"#).into_bytes(),
        ),
        (
            "app/policy.rego".into(),
            format!("package app\n\nallow := {allow_value}\n\nrevision := \"{revision}\"\n")
                .into_bytes(),
        ),
    ]
}

/// Writes bundle files into a directory.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Lays out `mount` as the kubelet does for a ConfigMap: the real files live in a timestamped
/// directory, `..data` points at it, and each visible name is a symlink through `..data`.
pub fn configmap_publish(mount: &Path, generation: u32, files: &[(String, Vec<u8>)]) {
    let target = mount.join(format!("..2026_11_24_{generation:02}"));
    write_dir(&target, files);
    let tmp = mount.join("..data_tmp");
    std::os::unix::fs::symlink(target.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, mount.join("..data")).unwrap();
    for (name, _) in files {
        let top = name.split('/').next().unwrap();
        let visible = mount.join(top);
        if std::fs::symlink_metadata(&visible).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(top), &visible).unwrap();
        }
    }
}

/// The same files as a tar.gz.
pub fn bundle_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    tar_gz(&entries)
}
