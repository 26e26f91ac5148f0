//! What this build is: the version, commit, time and host that build.rs recorded, as OPA's
//! `?provenance` answers and `opa version` print them.

/// The crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// HEAD's short hash at build time; empty when built outside a git checkout.
pub const BUILD_COMMIT: &str = env!("VERDICT_BUILD_COMMIT");
/// RFC 3339 in UTC: `SOURCE_DATE_EPOCH` when the build set it, else when build.rs last ran.
pub const BUILD_TIMESTAMP: &str = env!("VERDICT_BUILD_TIMESTAMP");
pub const BUILD_HOSTNAME: &str = env!("VERDICT_BUILD_HOSTNAME");

/// `verdict version`'s text, in `opa version`'s layout.
pub fn version_text() -> String {
    format!(
        "Version: {VERSION}\nBuild Commit: {BUILD_COMMIT}\nBuild Timestamp: {BUILD_TIMESTAMP}\n\
         Build Hostname: {BUILD_HOSTNAME}\nPlatform: {}\nRegorus Version: {}\n",
        env!("VERDICT_BUILD_TARGET"),
        regorus_version()
    )
}

/// The engine's version, from the lock file the build used (regorus exports none).
fn regorus_version() -> &'static str {
    env!("VERDICT_REGORUS_VERSION")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_timestamp_is_rfc3339() {
        assert!(chrono::DateTime::parse_from_rfc3339(super::BUILD_TIMESTAMP).is_ok());
        assert!(super::version_text().contains("Build Timestamp: 20"));
    }
}
