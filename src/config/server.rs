//! OPA's `server` section: how large a request body may be, before and after gzip, and when
//! responses are gzipped.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// OPA's `server` section: request decoding limits and response encoding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub decoding: DecodingConfig,
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// Prometheus bucket settings; accepted, used once metrics land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Json>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodingConfig {
    /// Largest request body accepted. OPA's default is 256 MiB; verdict's is 16 MiB because a
    /// payment decision's input is a few KiB, and a sidecar that buffers a few 256 MiB bodies
    /// at once would take memory its gateway needs.
    #[serde(default = "default_max_length")]
    pub max_length: u64,
    #[serde(default)]
    pub gzip: GzipDecodingConfig,
}

impl Default for DecodingConfig {
    fn default() -> Self {
        DecodingConfig {
            max_length: default_max_length(),
            gzip: GzipDecodingConfig::default(),
        }
    }
}

fn default_max_length() -> u64 {
    16 << 20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipDecodingConfig {
    /// Largest decompressed body of a gzip request (OPA: 512 MiB; verdict: 64 MiB).
    #[serde(default = "default_gzip_max_length")]
    pub max_length: u64,
}

impl Default for GzipDecodingConfig {
    fn default() -> Self {
        GzipDecodingConfig {
            max_length: default_gzip_max_length(),
        }
    }
}

fn default_gzip_max_length() -> u64 {
    64 << 20
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodingConfig {
    #[serde(default)]
    pub gzip: GzipEncodingConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipEncodingConfig {
    /// Responses at least this long are gzipped when the client accepts it (OPA: 1024).
    #[serde(default = "default_min_length")]
    pub min_length: usize,
    /// 0, 1 or 9 as in OPA (no compression, fastest, best).
    #[serde(default = "default_compression_level")]
    pub compression_level: u32,
}

impl Default for GzipEncodingConfig {
    fn default() -> Self {
        GzipEncodingConfig {
            min_length: default_min_length(),
            compression_level: default_compression_level(),
        }
    }
}

fn default_min_length() -> usize {
    1024
}

fn default_compression_level() -> u32 {
    9
}
