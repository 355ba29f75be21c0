//! Walks every [`Value`] of a statement in order of appearance, with an explicit stack (no
//! recursion, whatever the tree's depth).

use crate::ast::{Expr, Statement, UpdateAction, Value};

enum Node<'a> {
    Expr(&'a Expr),
    Value(&'a Value),
}

/// Calls `f` on every value of `stmt` (collections before their elements), in the order they
/// appear in the statement's text.
pub(crate) fn values<'a>(stmt: &'a Statement, mut f: impl FnMut(&'a Value)) {
    // Pushed in reverse so that popping visits them in order.
    let mut stack: Vec<Node<'a>> = Vec::new();
    match stmt {
        // Projections and ORDER BY keys are paths: no values.
        Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => {
            stack.extend(s.where_clause.iter().map(Node::Expr));
        }
        Statement::Insert(i) => {
            stack.extend(i.item.iter().rev().map(|(_, v)| Node::Value(v)));
        }
        Statement::Update(u) => {
            stack.push(Node::Expr(&u.where_clause));
            for a in u.actions.iter().rev() {
                if let UpdateAction::Set { value, .. } = a {
                    stack.push(Node::Expr(value));
                }
            }
        }
        Statement::Delete(d) => stack.push(Node::Expr(&d.where_clause)),
    }
    while let Some(node) = stack.pop() {
        match node {
            Node::Value(v) => {
                f(v);
                match v {
                    Value::List(vs) | Value::Set(vs) => {
                        stack.extend(vs.iter().rev().map(Node::Value));
                    }
                    Value::Tuple(kvs) => {
                        stack.extend(kvs.iter().rev().map(|(_, v)| Node::Value(v)));
                    }
                    _ => {}
                }
            }
            Node::Expr(e) => match e {
                Expr::Path(_) => {}
                Expr::Value(v) => stack.push(Node::Value(v)),
                Expr::Call { args, .. } => stack.extend(args.iter().rev().map(Node::Expr)),
                Expr::Arith { first, rest } => {
                    stack.extend(rest.iter().rev().map(|(_, e)| Node::Expr(e)));
                    stack.push(Node::Expr(first));
                }
                Expr::Compare { left, right, .. } => {
                    stack.push(Node::Expr(right));
                    stack.push(Node::Expr(left));
                }
                Expr::Between { value, low, high } => {
                    stack.push(Node::Expr(high));
                    stack.push(Node::Expr(low));
                    stack.push(Node::Expr(value));
                }
                Expr::In { value, list } => {
                    stack.extend(list.iter().rev().map(Node::Value));
                    stack.push(Node::Expr(value));
                }
                Expr::Is { value, .. } => stack.push(Node::Expr(value)),
                Expr::And(cs) | Expr::Or(cs) => stack.extend(cs.iter().rev().map(Node::Expr)),
                Expr::Not(c) => stack.push(Node::Expr(c)),
            },
        }
    }
}
