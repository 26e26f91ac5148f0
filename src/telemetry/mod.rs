//! Logging: structured lines on stderr (JSON by default, as OPA writes them), a level from the
//! command line, and panics reported through the log instead of a bare stderr dump. Metrics
//! live in `metrics`.

mod connections;
pub mod metrics;
pub mod protojson;
mod proxy;
mod spool;

use tracing_subscriber::EnvFilter;

/// Log line formats, named as OPA's `--log-format` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    #[value(name = "json-pretty")]
    JsonPretty,
    Text,
}

/// Installs the global subscriber. `level` is OPA's `--log-level` (debug, info, warn, error).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(format!("{level},h2=warn,hyper=warn,notify=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::JsonPretty => builder.json().flatten_event(true).pretty().try_init(),
        // Colour codes only for a person at a terminal: in a file or a pipe they are noise
        // that grep and log shippers keep. NO_COLOR (no-color.org) turns them off anywhere.
        LogFormat::Text => builder.with_ansi(text_in_colour()).try_init(),
    };
    std::panic::set_hook(Box::new(|info| {
        // Engine panics are caught per decision; this records where they came from.
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(location = location.as_deref().unwrap_or("unknown"), panic = %payload(info), "panic contained");
    }));
}

fn text_in_colour() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

fn payload(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}
