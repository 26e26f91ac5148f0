//! Unit tests of the graphql builtins.
