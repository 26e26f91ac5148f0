//! The fast path's Prometheus families, appended to `/metrics` in the text format: which
//! engine serves each entrypoint, and the VM's decisions, fallbacks and shadow checks. Labels
//! are the policy's own rule paths, never input values.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::shadow::COUNTS;
use super::FastPath;

/// Writes the families for `fast` (the active revision's fast path, if any) to `out`.
pub fn write(fast: Option<&FastPath>, out: &mut Vec<u8>) {
    let mut text = String::new();
    let status = fast.map(FastPath::status).unwrap_or_default();
    let families: [(&str, &str, &str); 4] = [
        (
            "verdict_engine_entrypoints",
            "gauge",
            "Entrypoints of the active revision by the engine serving them (1 per path).",
        ),
        (
            "verdict_vm_decisions_total",
            "counter",
            "Decisions the bytecode VM answered, by entrypoint.",
        ),
        (
            "verdict_vm_fallbacks_total",
            "counter",
            "VM errors or limits answered by the interpreter instead, by entrypoint.",
        ),
        (
            "verdict_vm_shadow_mismatches_total",
            "counter",
            "Shadow checks where the VM disagreed with the interpreter, by entrypoint.",
        ),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &status {
            let path = escape(&s.path);
            let _ = match i {
                0 => writeln!(text, "{name}{{engine=\"{}\",path=\"{path}\"}} 1", s.engine),
                1 => writeln!(text, "{name}{{path=\"{path}\"}} {}", s.vm_decisions),
                2 => writeln!(text, "{name}{{path=\"{path}\"}} {}", s.fallbacks),
                _ => writeln!(text, "{name}{{path=\"{path}\"}} {}", s.shadow_mismatches),
            };
        }
    }
    let process = [
        (
            "verdict_vm_shadow_checks_total",
            "VM decisions re-run on the interpreter.",
            &COUNTS.checked,
        ),
        (
            "verdict_vm_shadow_dropped_total",
            "Shadow samples dropped because the queue was full.",
            &COUNTS.dropped,
        ),
    ];
    for (name, help, counter) in process {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    out.extend_from_slice(text.as_bytes());
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
