//! Pushed data: the documents clients write with OPA's Data API (`PUT`, `PATCH`, `DELETE
//! /v1/data/...`), one tree beside the bundles' data.
//!
//! The operations follow OPA's server and in-memory store (server.go `v1DataPut`/`Patch`/
//! `Delete`, storage/inmem, storage.MakeDir): the same ownership rules against bundle roots,
//! the same JSON-Patch semantics on objects and arrays, and the same error texts, since clients
//! match on them. Every operation works on a copy-on-write copy, so a write that fails halfway
//! through (a PATCH whose third op fails) leaves nothing behind.

use std::collections::BTreeSet;

use regorus::Value;

use crate::bundle::{is_prefix, Root};
use crate::policy::path::go_atoi;
use crate::policy::{CompileError, RegoError};
use crate::runtime::policies::{PolicyOp, PolicyTimings};
use crate::runtime::store::StoreError;

/// A path into the data document as OPA's storage layer holds it: unescaped segments, which
/// index arrays when they are integers and key objects otherwise.
pub type StoragePath = Vec<String>;

/// How deep a pushed document may reach from the root of `data`. The engine merges data no
/// deeper than 128 levels and the store reads documents back under the JSON parser's limit of
/// 128, so anything deeper would be accepted once and then fail every rebuild or restart. OPA
/// has no such limit; verdict refuses the write up front instead.
pub const MAX_DEPTH: usize = 100;

const DOES_NOT_EXIST: &str = "document does not exist";
const INDEX_NOT_INTEGER: &str = "array index must be integer";
const INDEX_OUT_OF_RANGE: &str = "array index out of range";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Add,
    Remove,
    Replace,
}

/// One JSON-Patch operation, its path already joined to the URL's.
#[derive(Debug, Clone)]
pub struct Patch {
    pub kind: PatchKind,
    pub path: StoragePath,
    pub value: Value,
}

/// A Data API write as the handler parsed it.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        path: StoragePath,
        value: Value,
        /// `If-None-Match: *`: leave an existing document alone (OPA's 304).
        if_none_match: bool,
    },
    Patch(Vec<Patch>),
    Delete {
        path: StoragePath,
    },
    /// A policy API write: the modules change, the documents do not.
    Policy(PolicyOp),
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Applied,
    /// `If-None-Match: *` found a document there: nothing was written.
    NotModified,
    /// A policy stored and compiled; `None`: it was there as sent (OPA skips the parse).
    Policy(Option<PolicyTimings>),
}

/// Why a write was refused, in OPA's words where OPA has them.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("can't write to document root with bundle roots configured")]
    RootOwned,
    #[error("all paths owned by bundle {}", go_quote(.bundle))]
    AllOwned { bundle: String },
    #[error("path {path} is owned by bundle {}", go_quote(.bundle))]
    Owned { path: String, bundle: String },
    #[error("storage_not_found_error: {path}: {hint}")]
    NotFound { path: String, hint: &'static str },
    #[error("storage_write_conflict_error: {path}")]
    Conflict { path: String },
    #[error("storage_invalid_patch_error: {0}")]
    InvalidPatch(String),
    #[error("{id}:0: rego_parse_error: empty module")]
    EmptyModule { id: String },
    /// A policy that does not parse or compile with the rest; the errors say where.
    #[error("error(s) occurred while compiling module(s)")]
    Module(Vec<RegoError>),
    #[error("storage_not_found_error: policy id {}", go_quote(.id))]
    PolicyNotFound { id: String },
    #[error("document at {path} is nested deeper than {MAX_DEPTH} levels")]
    TooDeep { path: String },
    /// The written data conflicts with a rule, or cannot merge with the bundles' data.
    #[error("{0}")]
    Rules(CompileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reloader stopped, or failed while applying the write.
    #[error("the data writer is not available")]
    Unavailable,
}

/// A bundle active now, as ownership checks see it.
#[derive(Debug, Clone)]
pub struct Owner {
    pub bundle: String,
    pub roots: Vec<Root>,
}

/// Applies `op` to a copy of `tree` under OPA's ownership rules. `None` when nothing is to be
/// written (`If-None-Match: *` on an existing document).
pub fn apply(tree: &Value, op: &WriteOp, owners: &[Owner]) -> Result<Option<Value>, WriteError> {
    let mut next = tree.clone();
    match op {
        WriteOp::Put {
            path,
            value,
            if_none_match,
        } => {
            check_scope(owners, path)?;
            check_depth(path, value)?;
            if read(&next, path).is_ok() {
                if *if_none_match {
                    return Ok(None);
                }
            } else if let Some((_, parent)) = path.split_last() {
                make_dir(&mut next, parent)?;
            }
            write(&mut next, PatchKind::Add, path, value.clone())?;
        }
        WriteOp::Patch(patches) => {
            for patch in patches {
                check_scope(owners, &patch.path)?;
                check_depth(&patch.path, &patch.value)?;
                write(&mut next, patch.kind, &patch.path, patch.value.clone())?;
            }
        }
        WriteOp::Delete { path } => {
            check_scope(owners, path)?;
            read(&next, path)?;
            write(&mut next, PatchKind::Remove, path, Value::Null)?;
        }
        // Not a document: the reloader applies these (`reloader/policies.rs`).
        WriteOp::Policy(_) => return Ok(None),
    }
    Ok(Some(next))
}

/// OPA's `checkPathScope`: nothing at or above or below a bundle root may be written, nor the
/// root document while any bundle is active. Segments are compared unescaped (OPA compares
/// the escaped form, which would let a root with a space in it be written to).
pub(crate) fn check_scope(owners: &[Owner], path: &[String]) -> Result<(), WriteError> {
    if path.is_empty() && !owners.is_empty() {
        return Err(WriteError::RootOwned);
    }
    for owner in owners {
        for root in &owner.roots {
            if root.is_empty() {
                return Err(WriteError::AllOwned {
                    bundle: owner.bundle.clone(),
                });
            }
            if is_prefix(root, path) || is_prefix(path, root) {
                return Err(WriteError::Owned {
                    path: display(path).trim_matches('/').to_string(),
                    bundle: owner.bundle.clone(),
                });
            }
        }
    }
    Ok(())
}

fn check_depth(path: &[String], value: &Value) -> Result<(), WriteError> {
    if path.len() + depth(value) > MAX_DEPTH {
        return Err(WriteError::TooDeep {
            path: display(path),
        });
    }
    Ok(())
}

/// Nesting levels of objects and arrays. Values come from the JSON parser, which stops at 128
/// levels, so the recursion is bounded.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// OPA's `ptr.Ptr`: the document at `path`.
fn read<'a>(tree: &'a Value, path: &[String]) -> Result<&'a Value, WriteError> {
    let mut node = tree;
    for key in path {
        node = match node {
            Value::Object(o) => o
                .get(&Value::from(key.as_str()))
                .ok_or_else(|| not_found(path, DOES_NOT_EXIST))?,
            Value::Array(a) => {
                let at = array_index(key, a.len(), path)?;
                a.get(at)
                    .ok_or_else(|| not_found(path, INDEX_OUT_OF_RANGE))?
            }
            _ => return Err(not_found(path, DOES_NOT_EXIST)),
        };
    }
    Ok(node)
}

/// OPA's `storage.MakeDir`: creates the missing objects down to `path`, from the deepest
/// document that exists, which must itself be an object.
fn make_dir(tree: &mut Value, path: &[String]) -> Result<(), WriteError> {
    let existing = (0..=path.len())
        .rev()
        .find(|&n| read(tree, &path[..n]).is_ok())
        .unwrap_or(0);
    if !matches!(read(tree, &path[..existing]), Ok(Value::Object(_))) {
        return Err(WriteError::Conflict {
            path: display(&path[..existing]),
        });
    }
    for n in existing + 1..=path.len() {
        write(tree, PatchKind::Add, &path[..n], Value::new_object())?;
    }
    Ok(())
}

/// OPA's in-memory store write: JSON-Patch `add`, `remove` or `replace` at `path`.
fn write(
    tree: &mut Value,
    kind: PatchKind,
    path: &[String],
    value: Value,
) -> Result<(), WriteError> {
    let Some((leaf, parents)) = path.split_last() else {
        return write_root(tree, kind, value);
    };
    let mut node = tree;
    for key in parents {
        node = child_mut(node, key, path)?;
    }
    if let Value::Object(_) = node {
        let object = node
            .as_object_mut()
            .map_err(|_| not_found(path, DOES_NOT_EXIST))?;
        let key = Value::from(leaf.as_str());
        if kind != PatchKind::Add && !object.contains_key(&key) {
            return Err(not_found(path, DOES_NOT_EXIST));
        }
        if kind == PatchKind::Remove {
            object.remove(&key);
        } else {
            object.insert(key, value);
        }
        return Ok(());
    }
    let Value::Array(array) = node else {
        return Err(not_found(path, DOES_NOT_EXIST));
    };
    let mut items = array.to_vec();
    if leaf == "-" || *leaf == items.len().to_string() {
        if kind != PatchKind::Add {
            return Err(WriteError::InvalidPatch(format!(
                "{}: invalid patch path",
                display(path)
            )));
        }
        items.push(value);
    } else {
        let at = array_index(leaf, items.len(), path)?;
        match kind {
            PatchKind::Add => items.insert(at, value),
            PatchKind::Remove => {
                items.remove(at);
            }
            PatchKind::Replace => items[at] = value,
        }
    }
    *node = Value::from(items);
    Ok(())
}

fn write_root(tree: &mut Value, kind: PatchKind, value: Value) -> Result<(), WriteError> {
    if kind == PatchKind::Remove {
        return Err(WriteError::InvalidPatch("root cannot be removed".into()));
    }
    if !matches!(value, Value::Object(_)) {
        return Err(WriteError::InvalidPatch("root must be object".into()));
    }
    *tree = value;
    Ok(())
}

/// The child of `node` at `key` for writing; only this path is copied, the rest stays shared.
fn child_mut<'a>(
    node: &'a mut Value,
    key: &str,
    path: &[String],
) -> Result<&'a mut Value, WriteError> {
    match node {
        Value::Object(_) => node
            .as_object_mut()
            .ok()
            .and_then(|o| o.get_mut(&Value::from(key)))
            .ok_or_else(|| not_found(path, DOES_NOT_EXIST)),
        Value::Array(a) => {
            let at = array_index(key, a.len(), path)?;
            node.as_array_mut()
                .ok()
                .and_then(|a| a.get_mut(at))
                .ok_or_else(|| not_found(path, INDEX_OUT_OF_RANGE))
        }
        _ => Err(not_found(path, DOES_NOT_EXIST)),
    }
}

/// OPA's `ValidateArrayIndex`: Go's `Atoi`, then the bounds.
fn array_index(key: &str, len: usize, path: &[String]) -> Result<usize, WriteError> {
    let index = go_atoi(key).ok_or_else(|| not_found(path, INDEX_NOT_INTEGER))?;
    usize::try_from(index)
        .ok()
        .filter(|&i| i < len)
        .ok_or_else(|| not_found(path, INDEX_OUT_OF_RANGE))
}

fn not_found(path: &[String], hint: &'static str) -> WriteError {
    WriteError::NotFound {
        path: display(path),
        hint,
    }
}

/// Removes whatever lies at each root, as OPA's bundle activation erases the roots it is about
/// to own (`eraseData` in bundle/store.go), pushed data included.
pub fn erase(tree: &Value, roots: &[Root]) -> Value {
    let mut next = tree.clone();
    for root in roots.iter().filter(|r| !r.is_empty()) {
        if read(&next, root).is_ok() {
            // Only a missing document can fail here, and it was just read.
            let _ = write(&mut next, PatchKind::Remove, root, Value::Null);
        }
    }
    next
}

/// The top-level documents that differ between two trees: each with its new value, or `None`
/// when it is gone. Unchanged documents share their storage, so comparing them is cheap.
pub fn changed_documents(old: &Value, new: &Value) -> Vec<(String, Option<Value>)> {
    let keys = |v: &Value| -> BTreeSet<Value> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let get = |v: &Value, k: &Value| v.as_object().ok().and_then(|o| o.get(k)).cloned();
    let mut all = keys(old);
    all.extend(keys(new));
    all.into_iter()
        .filter_map(|key| {
            let (before, after) = (get(old, &key), get(new, &key));
            let name = key.as_string().ok()?.to_string();
            (before != after).then_some((name, after))
        })
        .collect()
}

/// OPA's `storage.Path.String()`: `/` and each segment escaped as Go's `url.PathEscape`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Go's `%q` for the ordinary names bundles have.
fn go_quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests;
