//! Ad-hoc queries with OPA's evaluation switches: what `/v1/query` and `verdict eval` run,
//! with the strict-builtin-errors switch OPA's compliance cases set (`strict_error`).

use regorus::{QueryResults, Value};

use super::PolicySet;

/// How an ad-hoc query is evaluated.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub input: Option<Value>,
    /// OPA's `strict-builtin-errors`: a failing builtin fails the query instead of making its
    /// expression undefined.
    pub strict_builtin_errors: bool,
}

impl PolicySet {
    /// `PolicySet::query` with OPA's switches: every result with its bindings.
    pub fn query_with(
        &self,
        text: &str,
        options: QueryOptions,
    ) -> Result<QueryResults, super::EvalError> {
        if !options.strict_builtin_errors {
            return self.query(text, options.input);
        }
        // The switch lives on the engine: a strict twin of the warmed template (a clone costs
        // a few hundred nanoseconds) runs the same `query`, so both take one path.
        let mut template = self.template.clone();
        template.set_strict_builtin_errors(true);
        let strict = PolicySet {
            id: super::next_id(),
            template,
            base: self.base.clone(),
            definitions: self.definitions.clone(),
            eval_timeout: self.eval_timeout,
        };
        strict.query(text, options.input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_builtin_errors_fail_the_query_only_when_asked() {
        let set = PolicySet::empty();
        let lenient = set
            .query_with("x := to_number(\"nope\")", QueryOptions::default())
            .unwrap();
        assert!(lenient.result.is_empty(), "undefined, not an error");
        let strict = QueryOptions {
            strict_builtin_errors: true,
            ..QueryOptions::default()
        };
        let err = set
            .query_with("x := to_number(\"nope\")", strict)
            .unwrap_err();
        assert!(err.detail().contains("eval_builtin_error"), "{err:?}");
        // The set itself stays lenient.
        let again = set.query("x := to_number(\"nope\")", None).unwrap();
        assert!(again.result.is_empty());
    }
}
