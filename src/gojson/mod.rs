//! JSON as OPA (Go's `encoding/json`) reads and writes it, in one place: clients diff and hash
//! OPA's responses and bundle signatures hash OPA's manifests, so verdict writes the same bytes
//! (`<`, `>`, `&`, U+2028 and U+2029 escaped, sorted keys, Go's numbers and layout) and words
//! decoding errors as Go does.
//!
//! - `string`: the one JSON string writer;
//! - `value`: Rego values and OPA's response envelopes;
//! - `serde`: any serde value with Go's escaping and layout;
//! - `document`: a JSON document as OPA holds one (numbers kept as written), for bundles;
//! - `decode`: Go's decoding rules and error wording.

mod decode;
mod document;
mod serde;
mod string;
mod value;

pub use decode::{decode_whole, go_json_error, is_memory_limit};
pub use document::Json;
pub use serde::{to_body, write_serde};
pub use string::{write_str, write_string};
pub use value::{key_text, value_to_string, write_array, write_value, ObjectWriter};
