//! Projection expressions: [`Projection`], its parser and [`Projection::apply`].

use std::collections::BTreeMap;

use shoal_types::{AttributeValue, Item};

use crate::lexer::Tok;
use crate::parser::Parser;
use crate::path::{DocPath, PathElem, check_disjoint};
use crate::{ExprContext, ExprError, ExprKind};

/// A list of document paths to return. Paths never overlap or conflict.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub paths: Vec<DocPath>,
}

/// Parses a `ProjectionExpression`: comma-separated document paths.
///
/// # Errors
/// `Invalid ProjectionExpression: ...`: empty, over 4 KB, syntax error, reserved word,
/// undefined `#name`, paths deeper than 32, and two paths that overlap (`a` and `a.b`) or
/// conflict (`a[0]` and `a.b`).
pub fn parse_projection(text: &str, ctx: &mut ExprContext) -> Result<Projection, ExprError> {
    let mut p = Parser::new(text, ExprKind::Projection, ctx)?;
    let mut paths = vec![p.parse_path()?];
    while p.eat(&Tok::Comma) {
        paths.push(p.parse_path()?);
    }
    p.expect_end()?;
    let refs: Vec<&DocPath> = paths.iter().collect();
    check_disjoint(&refs, ExprKind::Projection)?;
    Ok(Projection { paths })
}

/// The projection's paths merged into a tree.
#[derive(Debug, Default)]
struct Node {
    /// The whole value at this node is selected.
    all: bool,
    names: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Node {
    fn insert(&mut self, elems: &[PathElem]) {
        match elems.split_first() {
            None => self.all = true,
            Some((PathElem::Name(n), rest)) => {
                self.names.entry(n.clone()).or_default().insert(rest)
            }
            Some((PathElem::Index(i), rest)) => self.indexes.entry(*i).or_default().insert(rest),
        }
    }

    /// The selected part of `v`, or `None` when nothing selected exists.
    fn project(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.all {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) if !self.names.is_empty() => {
                let out = project_map(&self.names, m);
                (!out.is_empty()).then_some(AttributeValue::M(out))
            }
            AttributeValue::L(l) if !self.indexes.is_empty() => {
                let out: Vec<AttributeValue> = self
                    .indexes
                    .iter()
                    .filter_map(|(i, node)| l.get(*i).and_then(|e| node.project(e)))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::L(out))
            }
            _ => None,
        }
    }
}

fn project_map(names: &BTreeMap<String, Node>, m: &Item) -> Item {
    names
        .iter()
        .filter_map(|(k, node)| Some((k.clone(), node.project(m.get(k)?)?)))
        .collect()
}

impl Projection {
    /// The projected copy of `item`: only the selected paths, nested maps and lists keeping
    /// their shape (selected list elements are packed in index order, as DynamoDB does).
    pub fn apply(&self, item: &Item) -> Item {
        let mut root = Node::default();
        for p in &self.paths {
            root.insert(&p.elems);
        }
        project_map(&root.names, item)
    }

    /// The distinct top-level attribute names, in first-use order.
    pub fn top_level_names(&self) -> impl Iterator<Item = &str> {
        let mut seen = std::collections::HashSet::new();
        self.paths
            .iter()
            .map(DocPath::top)
            .filter(move |n| seen.insert(*n))
    }
}
