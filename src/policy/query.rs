//! Ad-hoc queries with OPA's evaluation switches: what `/v1/query` and `verdict eval` run,
//! with the strict-builtin-errors switch OPA's compliance cases set (`strict_error`).

use std::panic::catch_unwind;

use regorus::{QueryResults, Value};

use super::error::{self, EvalError};
use super::{guard, PolicySet};

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
            fast: None,
            vm: self.vm,
        };
        // verdict's own builtins read the switch from their thread, as in `evaluate`.
        let _strict = super::builtins::strict_scope(true);
        strict.query(text, options.input)
    }
}

impl PolicySet {
    /// Evaluates an ad-hoc Rego query (`verdict eval`), with every result and binding.
    pub fn query(
        &self,
        text: &str,
        input: Option<Value>,
    ) -> Result<regorus::QueryResults, EvalError> {
        check_query_syntax(text)?;
        // OPA's meaning where regorus reads a reference differently, as in the modules.
        let text = &*super::rewrite::generic::query(text, &self.definitions.documents);
        let mut engine = self.template.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        let _deadline = super::builtins::deadline_scope(self.eval_timeout);
        match guard::stack::contained(|| engine.eval_query(text.to_string(), false)) {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(e)) => Err(error::from_engine(&e, self.eval_timeout)),
            Err(_) => Err(EvalError::EngineFault),
        }
    }
}

/// Parses a query on its own first, so a syntax error is reported as one (OPA's 400), not
/// as an evaluation failure.
fn check_query_syntax(text: &str) -> Result<(), EvalError> {
    // The parser cannot be interrupted: text it would take too long over is refused unread.
    guard::check_text("", text).map_err(|e| EvalError::Parse(vec![e]))?;
    // The text is the client's: a parser panic on it is one failed request.
    let parsed = catch_unwind(|| {
        regorus::Source::from_contents("<query.rego>".into(), text.to_string()).and_then(|source| {
            let mut parser = regorus::unstable::Parser::new(&source)?;
            parser.set_max_col(guard::MAX_LINE_COLUMNS);
            parser.enable_rego_v1()?;
            parser.parse_user_query().map(|_| ())
        })
    })
    .map_err(|_| EvalError::EngineFault)?;
    parsed.map_err(|e| EvalError::Parse(vec![error::parse_error(&format!("{e:#}"))]))
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
