//! The checked request's `parsed_body` (JSON, form-urlencoded, multipart) and
//! `truncated_body`, with Go's error words, since opa-envoy-plugin reports those errors to
//! Envoy in its deny body.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::num::IntErrorKind;

use regorus::Value;

use super::url::{parse_query, query_object};
use super::ExtAuthzError;
use crate::gojson;

/// A parsed body, or none (`null`): no content type, an unsupported one, or an empty body.
#[derive(Debug, PartialEq)]
pub struct ParsedBody {
    pub value: Value,
    /// True when Envoy forwarded only part of the body, which is then not parsed.
    pub truncated: bool,
}

impl ParsedBody {
    fn none() -> ParsedBody {
        ParsedBody {
            value: Value::Null,
            truncated: false,
        }
    }

    fn truncated() -> ParsedBody {
        ParsedBody {
            value: Value::Null,
            truncated: true,
        }
    }
}

/// Parses the body Envoy forwarded, chosen by its content type as opa-envoy-plugin does.
pub async fn parse_body(
    headers: &HashMap<String, String>,
    body: &str,
    raw_body: &[u8],
) -> Result<ParsedBody, ExtAuthzError> {
    // Envoy marks a body it cut at `max_request_bytes`; no length header needed.
    if headers.get("x-envoy-auth-partial-body").map(String::as_str) == Some("true") {
        return Ok(ParsedBody::truncated());
    }
    let Some(content_type) = headers.get("content-type") else {
        return Ok(ParsedBody::none());
    };
    let payload: &[u8] = if body.is_empty() {
        raw_body
    } else {
        body.as_bytes()
    };
    // gRPC bodies need the service's descriptors (`proto-descriptor`), which verdict does not
    // load: like opa-envoy-plugin without them, the body stays unparsed.
    let kind = if content_type.contains("application/json") {
        Kind::Json
    } else if content_type.contains("application/grpc") {
        return Ok(ParsedBody::none());
    } else if content_type.contains("application/x-www-form-urlencoded") {
        Kind::Form
    } else if content_type.contains("multipart/form-data") {
        Kind::Multipart
    } else {
        return Ok(ParsedBody::none());
    };
    if payload.is_empty() {
        return Ok(ParsedBody::none());
    }
    if let Some(length) = headers.get("content-length") {
        if is_truncated(length, payload.len())? {
            return Ok(ParsedBody::truncated());
        }
    }
    let value = match kind {
        Kind::Json => gojson::decode_whole(payload).map_err(ExtAuthzError::Json)?,
        Kind::Form => query_object(parse_query(&String::from_utf8_lossy(payload))?),
        Kind::Multipart => multipart(content_type, payload).await?,
    };
    Ok(ParsedBody {
        value,
        truncated: false,
    })
}

enum Kind {
    Json,
    Form,
    Multipart,
}

/// True when the request's Content-Length promises more than Envoy forwarded.
fn is_truncated(content_length: &str, have: usize) -> Result<bool, ExtAuthzError> {
    let declared: i64 = content_length
        .parse()
        .map_err(|e: std::num::ParseIntError| {
            let why = match e.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
                _ => "invalid syntax",
            };
            ExtAuthzError::ContentLength {
                text: content_length.to_string(),
                why,
            }
        })?;
    Ok(declared != -1 && declared > i64::try_from(have).unwrap_or(i64::MAX))
}

/// `multipart/form-data`: each named part's values in order, JSON parts parsed as JSON.
async fn multipart(content_type: &str, payload: &[u8]) -> Result<Value, ExtAuthzError> {
    let media: mime::Mime = content_type
        .parse()
        .map_err(|e: mime::FromStrError| ExtAuthzError::MediaType(e.to_string()))?;
    let Some(boundary) = media.get_param(mime::BOUNDARY) else {
        return Ok(Value::Null);
    };
    let bytes = bytes::Bytes::copy_from_slice(payload);
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary.as_str());
    let mut values: BTreeMap<Value, Vec<Value>> = BTreeMap::new();
    while let Some(part) = parts.next_field().await.map_err(multipart_error)? {
        // Go's FormName: only a form-data part has a name.
        let header = |name: &str| {
            part.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let disposition = header("content-disposition");
        let is_form_data = disposition
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("form-data"));
        let Some(name) = part
            .name()
            .filter(|n| is_form_data && !n.is_empty())
            .map(Value::from)
        else {
            continue;
        };
        let is_json = header("content-type").contains("application/json");
        let content = part.bytes().await.map_err(multipart_error)?;
        let value = if is_json {
            gojson::decode_whole(&content).map_err(ExtAuthzError::Json)?
        } else {
            Value::from(String::from_utf8_lossy(&content).into_owned())
        };
        values.entry(name).or_default().push(value);
    }
    Ok(Value::from(
        values
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect::<BTreeMap<_, _>>(),
    ))
}

fn multipart_error(e: multer::Error) -> ExtAuthzError {
    ExtAuthzError::Multipart(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn bodies_parse_by_content_type() {
        let h = headers(&[("content-type", "application/json")]);
        let parsed = parse_body(&h, "{\"amount\": 250}\n", &[]).await.unwrap();
        assert_eq!(json(&parsed.value), r#"{"amount":250}"#);
        // Unlike the Data API, OPA's UnmarshalJSON refuses anything after the document.
        assert_eq!(
            parse_body(&h, "{} {}", &[]).await.unwrap_err().to_string(),
            "error: invalid character '{' after top-level value"
        );
        assert_eq!(
            parse_body(&h, "{} trailing", &[])
                .await
                .unwrap_err()
                .to_string(),
            "invalid character 't' looking for beginning of value"
        );
        let raw = parse_body(&h, "", br#"[1]"#).await.unwrap();
        assert_eq!(
            json(&raw.value),
            "[1]",
            "raw_body is read when body is empty"
        );
        let err = parse_body(&h, "{not json", &[])
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid character 'n' looking for beginning of object key string"
        );

        let h = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let parsed = parse_body(&h, "a=1&a=2&b=%20", &[]).await.unwrap();
        assert_eq!(json(&parsed.value), r#"{"a":["1","2"],"b":[" "]}"#);

        let h = headers(&[("content-type", "text/plain")]);
        assert_eq!(parse_body(&h, "x", &[]).await.unwrap(), ParsedBody::none());
        assert_eq!(
            parse_body(&headers(&[]), "{}", &[]).await.unwrap(),
            ParsedBody::none()
        );
    }

    #[tokio::test]
    async fn truncation_is_detected_not_parsed() {
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-length", "99"),
        ]);
        assert_eq!(
            parse_body(&h, "{", &[]).await.unwrap(),
            ParsedBody::truncated()
        );
        let h = headers(&[
            ("content-type", "application/json"),
            ("x-envoy-auth-partial-body", "true"),
        ]);
        assert_eq!(
            parse_body(&h, "{}", &[]).await.unwrap(),
            ParsedBody::truncated()
        );
        let h = headers(&[
            ("content-type", "application/json"),
            ("content-length", "ten"),
        ]);
        assert_eq!(
            parse_body(&h, "{}", &[]).await.unwrap_err().to_string(),
            r#"strconv.ParseInt: parsing "ten": invalid syntax"#
        );
    }

    #[tokio::test]
    async fn multipart_forms_collect_named_parts() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"meta\"\r\n\
                    Content-Type: application/json\r\n\r\n{\"a\": 1}\r\n\
                    --XX\r\nContent-Disposition: attachment; name=\"skipped\"\r\n\r\nx\r\n\
                    --XX\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nagain\r\n--XX--\r\n";
        let h = headers(&[("content-type", "multipart/form-data; boundary=XX")]);
        let parsed = parse_body(&h, body, &[]).await.unwrap();
        assert_eq!(
            json(&parsed.value),
            r#"{"meta":[{"a":1}],"note":["hello","again"]}"#
        );
        // Cut off before its closing boundary: an error, not a partial form.
        let cut = &body[..body.len() - 12];
        assert!(parse_body(&h, cut, &[]).await.is_err());
        let no_boundary = headers(&[("content-type", "multipart/form-data")]);
        assert_eq!(
            parse_body(&no_boundary, body, &[]).await.unwrap().value,
            Value::Null
        );
    }
}
