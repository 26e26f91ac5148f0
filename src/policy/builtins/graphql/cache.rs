//! Schemas given as text, kept loaded: policies pass the same schema on every decision, and
//! parsing and validating it (with the prelude) costs far more than the query does. Like
//! OPA's inter-query cache, ten are kept for the whole process (most recently used), and
//! only schemas up to `MAX_CACHED` bytes, which bounds the memory held. The lock is held for
//! a lookup or an insertion, never while a schema loads.

use std::sync::{Arc, Mutex, PoisonError};

use regorus::Value;

use super::schema::Schema;
use crate::policy::builtins::args::BuiltinError;

const ENTRIES: usize = 10;
const MAX_CACHED: usize = 128 << 10;

/// A schema text's AST (as the builtins return it) and what loading it gave.
pub struct Loaded {
    pub ast: Value,
    pub schema: Result<Schema, BuiltinError>,
}

/// Loaded schemas by text, most recently used first.
pub struct Cache {
    entries: Mutex<Vec<(String, Arc<Loaded>)>>,
}

static LOADED: Cache = Cache::new();

/// The loaded form of `text`, from the process's cache or from `load`.
pub fn loaded(
    text: &str,
    load: impl FnOnce() -> Result<Loaded, BuiltinError>,
) -> Result<Arc<Loaded>, BuiltinError> {
    LOADED.loaded(text, load)
}

impl Cache {
    pub const fn new() -> Cache {
        Cache {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut Vec<(String, Arc<Loaded>)>) -> T) -> T {
        // The entries are whole after any panic: an insertion is one push, a hit one move.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut entries)
    }

    /// The loaded form of `text`, cached or from `load` (then cached when small enough). A
    /// text that does not parse is not cached: `load` fails and the failure is returned.
    pub fn loaded(
        &self,
        text: &str,
        load: impl FnOnce() -> Result<Loaded, BuiltinError>,
    ) -> Result<Arc<Loaded>, BuiltinError> {
        let hit = self.with_entries(|entries| {
            let at = entries.iter().position(|(t, _)| t == text)?;
            let entry = entries.remove(at);
            let found = Arc::clone(&entry.1);
            entries.insert(0, entry);
            Some(found)
        });
        if let Some(found) = hit {
            return Ok(found);
        }
        let fresh = Arc::new(load()?);
        if text.len() <= MAX_CACHED {
            self.with_entries(|entries| {
                entries.insert(0, (text.to_string(), Arc::clone(&fresh)));
                entries.truncate(ENTRIES);
            });
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(text: &str) -> Result<Loaded, BuiltinError> {
        let doc = super::super::schema_parser::parse_schema(text, false)
            .map_err(|e| BuiltinError::invalid(e.message))?;
        Ok(Loaded {
            ast: super::super::encode::schema_document(&doc),
            schema: super::super::schema::load(&doc).map_err(|e| BuiltinError::invalid(e.message)),
        })
    }

    #[test]
    fn a_schema_is_loaded_once_and_failures_are_not_kept() {
        let cache = Cache::new();
        let text = "type Query { a: Int }";
        let first = cache.loaded(text, || fresh(text));
        let again = cache.loaded(text, || Err(BuiltinError::invalid("loaded twice")));
        assert!(matches!((&first, &again), (Ok(a), Ok(b)) if Arc::ptr_eq(a, b)));
        let bad = "type {";
        assert!(cache.loaded(bad, || fresh(bad)).is_err());
        let retried = cache.loaded(bad, || Err(BuiltinError::invalid("retried")));
        assert!(retried.is_err_and(|e| e.to_string() == "retried"));
    }

    #[test]
    fn only_the_most_recent_small_schemas_are_kept() {
        let cache = Cache::new();
        let texts: Vec<String> = (0..=ENTRIES)
            .map(|i| format!("type Query {{ f{i}: Int }}"))
            .collect();
        for text in &texts {
            assert!(cache.loaded(text, || fresh(text)).is_ok());
        }
        let reload = || Err(BuiltinError::invalid("reloaded"));
        assert!(
            cache.loaded(&texts[0], reload).is_err(),
            "the oldest is gone"
        );
        assert!(cache.loaded(&texts[1], reload).is_ok(), "the rest are kept");
        let big = format!("type Query {{ a: Int }}{}", " ".repeat(MAX_CACHED));
        assert!(cache.loaded(&big, || fresh(&big)).is_ok());
        assert!(
            cache.loaded(&big, reload).is_err(),
            "a big schema is not kept"
        );
    }
}
