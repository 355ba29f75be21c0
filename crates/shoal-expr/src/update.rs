//! Update expressions: [`Update`] and its parser. Applying is in `update_apply.rs`.

use shoal_types::AttributeValue;

use crate::lexer::Tok;
use crate::parser::{Parser, wrong_arity, wrong_operand_type};
use crate::path::{DocPath, check_disjoint};
use crate::projection::Projection;
use crate::{ExprContext, ExprError, ExprKind};

/// The right-hand side of a `SET` action.
#[derive(Debug, Clone)]
pub enum UpdateValue {
    /// The value at a path of the item before the update (it must exist).
    Path(DocPath),
    /// A substituted `:value`.
    Value(AttributeValue),
    /// `if_not_exists(path, value)`: the value at `path` if it exists, else `value`.
    IfNotExists(DocPath, Box<UpdateValue>),
    /// `list_append(a, b)`: the elements of list `a` then those of list `b`.
    ListAppend(Box<UpdateValue>, Box<UpdateValue>),
    /// `a + b` on numbers.
    Plus(Box<UpdateValue>, Box<UpdateValue>),
    /// `a - b` on numbers.
    Minus(Box<UpdateValue>, Box<UpdateValue>),
}

/// A parsed update expression. Target paths of all clauses never overlap or conflict.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// `SET path = value` actions.
    pub set: Vec<(DocPath, UpdateValue)>,
    /// `REMOVE path` actions.
    pub remove: Vec<DocPath>,
    /// `ADD path :value` actions (value is a number or a set).
    pub add: Vec<(DocPath, AttributeValue)>,
    /// `DELETE path :value` actions (value is a set).
    pub delete: Vec<(DocPath, AttributeValue)>,
}

impl Update {
    /// Every target path, in clause order SET, REMOVE, ADD, DELETE.
    fn targets(&self) -> Vec<&DocPath> {
        self.set
            .iter()
            .map(|(p, _)| p)
            .chain(&self.remove)
            .chain(self.add.iter().map(|(p, _)| p))
            .chain(self.delete.iter().map(|(p, _)| p))
            .collect()
    }

    /// Distinct top-level attribute names the update writes or removes (to reject key
    /// attribute updates: `Cannot update attribute {name}. This attribute is part of the key`).
    /// In first-use order; linear in the number of actions (`AttributeUpdates` may hold
    /// hundreds of thousands).
    pub fn top_level_names(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.targets()
            .into_iter()
            .map(DocPath::top)
            .filter(|n| seen.insert(*n))
            .collect()
    }

    /// Whether applying the update to a missing item creates it. Only `SET` and `ADD` put
    /// attributes into an item; an update with no actions, or with only `REMOVE` and
    /// `DELETE` actions, leaves a missing item missing ("attributes cannot be deleted from a
    /// nonexistent item. The operation succeeds, but DynamoDB does not create a new item",
    /// LegacyConditionalParameters.AttributeUpdates.md).
    pub fn creates_item(&self) -> bool {
        !self.set.is_empty() || !self.add.is_empty()
    }

    /// The document paths the update touches, as a projection (for `ReturnValues`
    /// `UPDATED_OLD` / `UPDATED_NEW`).
    pub fn updated_paths(&self) -> Projection {
        Projection {
            paths: self.targets().into_iter().cloned().collect(),
        }
    }
}

/// Parses an `UpdateExpression`: `SET`, `REMOVE`, `ADD`, `DELETE` clauses in any order, each
/// at most once, each with comma-separated actions.
///
/// # Errors
/// `Invalid UpdateExpression: ...`: empty, over 4 KB, syntax error, reserved word, undefined
/// placeholder, a clause used twice, overlapping or conflicting paths, functions not allowed in
/// updates, constant operands of the wrong type (`+`, `-`, `list_append`, `ADD`, `DELETE`),
/// more than 300 operators, paths deeper than 32.
pub fn parse_update(text: &str, ctx: &mut ExprContext) -> Result<Update, ExprError> {
    let mut p = Parser::new(text, ExprKind::Update, ctx)?;
    let mut u = Update::default();
    let mut seen = [false; 4];
    while !p.at_end() {
        let clause = ["SET", "REMOVE", "ADD", "DELETE"]
            .iter()
            .position(|k| p.at_keyword(k));
        let Some(clause) = clause else {
            return Err(p.syntax_error());
        };
        if std::mem::replace(&mut seen[clause], true) {
            let name = ["SET", "REMOVE", "ADD", "DELETE"][clause];
            return Err(ExprKind::Update.invalid(format!(
                "The \"{name}\" section can only be used once in an update expression;"
            )));
        }
        p.bump();
        loop {
            match clause {
                0 => {
                    let path = p.parse_path()?;
                    p.expect(&Tok::Eq)?;
                    let value = p.parse_update_value()?;
                    u.set.push((path, value));
                }
                1 => u.remove.push(p.parse_path()?),
                2 => {
                    let path = p.parse_path()?;
                    let v = p.parse_value()?;
                    check_add_delete_operand("ADD", &v)?;
                    u.add.push((path, v));
                }
                _ => {
                    let path = p.parse_path()?;
                    let v = p.parse_value()?;
                    check_add_delete_operand("DELETE", &v)?;
                    u.delete.push((path, v));
                }
            }
            if !p.eat(&Tok::Comma) {
                break;
            }
        }
    }
    check_disjoint(&u.targets(), ExprKind::Update)?;
    Ok(u)
}

/// DynamoDB's long type names, used in `ADD`/`DELETE` operand errors.
fn long_type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

fn check_add_delete_operand(op: &str, v: &AttributeValue) -> Result<(), ExprError> {
    let is_set = matches!(
        v,
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
    );
    let ok = is_set || (op == "ADD" && matches!(v, AttributeValue::N(_)));
    if ok {
        return Ok(());
    }
    Err(ExprKind::Update.invalid(format!(
        "Incorrect operand type for operator or function; operator: {op}, operand type: {}, typeSet: ALLOWED_FOR_{op}_OPERAND",
        long_type_name(v)
    )))
}

impl Parser<'_, '_, '_> {
    /// `operand (('+' | '-') operand)*`.
    fn parse_update_value(&mut self) -> Result<UpdateValue, ExprError> {
        let mut left = self.parse_update_operand()?;
        loop {
            let plus = if self.eat(&Tok::Plus) {
                true
            } else if self.eat(&Tok::Minus) {
                false
            } else {
                return Ok(left);
            };
            let sym = if plus { "+" } else { "-" };
            self.count_op()?;
            let right = self.parse_update_operand()?;
            for o in [&left, &right] {
                if let UpdateValue::Value(v) = o
                    && !matches!(v, AttributeValue::N(_))
                {
                    return Err(wrong_operand_type(self.kind, sym, v.type_name()));
                }
            }
            left = if plus {
                UpdateValue::Plus(Box::new(left), Box::new(right))
            } else {
                UpdateValue::Minus(Box::new(left), Box::new(right))
            };
        }
    }

    /// A path, a `:value`, `if_not_exists(path, value)` or `list_append(value, value)`.
    fn parse_update_operand(&mut self) -> Result<UpdateValue, ExprError> {
        match self.peek() {
            Some(Tok::ValuePh(_)) => Ok(UpdateValue::Value(self.parse_value()?)),
            Some(Tok::Ident(name)) if self.peek_at(1) == Some(&Tok::LParen) => {
                let name = name.clone();
                match name.as_str() {
                    "if_not_exists" | "list_append" => {}
                    "attribute_exists"
                    | "attribute_not_exists"
                    | "attribute_type"
                    | "begins_with"
                    | "contains"
                    | "size" => {
                        return Err(self.kind.invalid(format!(
                            "The function is not allowed in an update expression; function: {name}"
                        )));
                    }
                    _ => {
                        return Err(self
                            .kind
                            .invalid(format!("Invalid function name; function: {name}")));
                    }
                }
                self.bump();
                self.count_op()?;
                let args = self.parse_args(|p| p.parse_update_value())?;
                let n = args.len();
                let mut it = args.into_iter();
                let (Some(a), Some(b), None) = (it.next(), it.next(), it.next()) else {
                    return Err(wrong_arity(self.kind, &name, n));
                };
                if name == "if_not_exists" {
                    let UpdateValue::Path(path) = a else {
                        return Err(self.kind.invalid(
                            "Operator or function requires a document path; operator or function: if_not_exists",
                        ));
                    };
                    Ok(UpdateValue::IfNotExists(path, Box::new(b)))
                } else {
                    for o in [&a, &b] {
                        if let UpdateValue::Value(v) = o
                            && !matches!(v, AttributeValue::L(_))
                        {
                            return Err(wrong_operand_type(self.kind, &name, v.type_name()));
                        }
                    }
                    Ok(UpdateValue::ListAppend(Box::new(a), Box::new(b)))
                }
            }
            _ if self.at_path_start() => Ok(UpdateValue::Path(self.parse_path()?)),
            _ => Err(self.syntax_error()),
        }
    }
}
