//! Metric families as OPA's status report carries them (`metrics.prometheus` with
//! `status.prometheus: true`): protobuf's JSON mapping of Prometheus' `MetricFamily`, keyed
//! by family name, so that tools reading OPA's report read verdict's.

use prometheus::proto::{Metric, MetricFamily, MetricType};
use serde_json::{json, Map, Value as Json};

/// `{name: {name, help, type, metric: [...]}}` for each family.
pub fn families(families: &[MetricFamily]) -> Json {
    let mut out = Map::new();
    for family in families {
        let kind = family.get_field_type();
        let metrics: Vec<Json> = family
            .get_metric()
            .iter()
            .map(|m| metric(kind, m))
            .collect();
        out.insert(
            family.name().to_string(),
            json!({
                "name": family.name(),
                "help": family.help(),
                "type": type_name(kind),
                "metric": metrics,
            }),
        );
    }
    Json::Object(out)
}

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "COUNTER",
        MetricType::GAUGE => "GAUGE",
        MetricType::SUMMARY => "SUMMARY",
        MetricType::UNTYPED => "UNTYPED",
        MetricType::HISTOGRAM => "HISTOGRAM",
    }
}

fn metric(kind: MetricType, m: &Metric) -> Json {
    let mut out = Map::new();
    // protojson leaves empty repeated fields out.
    if !m.get_label().is_empty() {
        let labels: Vec<Json> = m
            .get_label()
            .iter()
            .map(|l| json!({"name": l.name(), "value": l.value()}))
            .collect();
        out.insert("label".into(), Json::Array(labels));
    }
    let (field, value) = match kind {
        MetricType::COUNTER => (
            "counter",
            json!({"value": number(m.get_counter().get_value())}),
        ),
        MetricType::GAUGE => ("gauge", json!({"value": number(m.get_gauge().get_value())})),
        MetricType::HISTOGRAM => {
            let h = m.get_histogram();
            let buckets: Vec<Json> = h
                .get_bucket()
                .iter()
                .map(|b| {
                    json!({
                        "cumulativeCount": b.cumulative_count().to_string(),
                        "upperBound": number(b.upper_bound()),
                    })
                })
                .collect();
            (
                "histogram",
                json!({
                    // 64-bit integers are strings in protobuf's JSON mapping.
                    "sampleCount": h.get_sample_count().to_string(),
                    "sampleSum": number(h.get_sample_sum()),
                    "bucket": buckets,
                }),
            )
        }
        MetricType::SUMMARY => {
            let s = m.get_summary();
            let quantiles: Vec<Json> = s
                .get_quantile()
                .iter()
                .map(|q| json!({"quantile": number(q.quantile()), "value": number(q.value())}))
                .collect();
            (
                "summary",
                json!({
                    "sampleCount": s.sample_count().to_string(),
                    "sampleSum": number(s.sample_sum()),
                    "quantile": quantiles,
                }),
            )
        }
        // verdict registers no untyped family.
        MetricType::UNTYPED => ("untyped", json!({})),
    };
    out.insert(field.into(), value);
    Json::Object(out)
}

/// A double as protobuf's JSON mapping writes it: whole numbers without a fraction, and the
/// values JSON has no number for as strings.
fn number(v: f64) -> Json {
    if v.is_nan() {
        return json!("NaN");
    }
    if v.is_infinite() {
        return json!(if v > 0.0 { "Infinity" } else { "-Infinity" });
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        return json!(v as i64);
    }
    serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

    #[test]
    fn families_have_opas_json_shape() {
        let registry = Registry::new();
        let counter =
            IntCounterVec::new(Opts::new("bundle_loaded_counter", "Loaded."), &["name"]).unwrap();
        counter.with_label_values(&["payment"]).inc_by(6);
        let histogram = HistogramVec::new(
            HistogramOpts::new("took_ns", "Took.").buckets(vec![1000.0, 2000.0]),
            &["stage"],
        )
        .unwrap();
        histogram.with_label_values(&["request"]).observe(1500.0);
        registry.register(Box::new(counter)).unwrap();
        registry.register(Box::new(histogram)).unwrap();
        let json = families(&registry.gather());
        assert_eq!(
            json["bundle_loaded_counter"],
            json!({"name": "bundle_loaded_counter", "help": "Loaded.", "type": "COUNTER",
                   "metric": [{"label": [{"name": "name", "value": "payment"}],
                               "counter": {"value": 6}}]})
        );
        assert_eq!(
            json["took_ns"]["metric"][0]["histogram"],
            json!({"sampleCount": "1", "sampleSum": 1500, "bucket": [
                {"cumulativeCount": "0", "upperBound": 1000},
                {"cumulativeCount": "1", "upperBound": 2000}]})
        );
        assert_eq!(number(0.25), json!(0.25));
        assert_eq!(number(f64::INFINITY), json!("Infinity"));
    }
}
