//! The syntax tree: [`Statement`] and its parts, and the questions an executor asks of it
//! (table and index, parameter count, key equalities in `WHERE`).

use shoal_expr::{CompareOp, DocPath};
use shoal_types::Number;

/// One parsed PartiQL statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `SELECT ... FROM ... [WHERE ...] [ORDER BY ...]`.
    Select(Select),
    /// `EXISTS(SELECT ...)`: a condition check, only valid in `ExecuteTransaction`.
    Exists(Select),
    /// `NOT EXISTS(SELECT ...)`: the opposite condition check, only valid in
    /// `ExecuteTransaction`.
    NotExists(Select),
    /// `INSERT INTO table VALUE {...}`.
    Insert(Insert),
    /// `UPDATE table SET|REMOVE ... WHERE ... [RETURNING ...]`.
    Update(Update),
    /// `DELETE FROM table WHERE ... [RETURNING ALL OLD *]`.
    Delete(Delete),
}

/// `SELECT projection FROM "table"[."index"] [WHERE condition] [ORDER BY key [ASC|DESC], ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub projection: Projection,
    pub table: String,
    /// `"table"."index"`: the secondary index to read.
    pub index: Option<String>,
    pub where_clause: Option<Expr>,
    /// Empty when there is no `ORDER BY`.
    pub order_by: Vec<OrderBy>,
}

/// What a `SELECT` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    /// `*`: every attribute.
    All,
    /// Attribute names and document paths, in the order written (never empty).
    Paths(Vec<DocPath>),
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub path: DocPath,
    /// `DESC`; `ASC` (the default) is `false`.
    pub descending: bool,
}

/// `INSERT INTO table VALUE {'name': value, ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub table: String,
    /// The item's attributes in the order written; names are unique.
    pub item: Vec<(String, Value)>,
}

/// `UPDATE table SET path = value | REMOVE path ... WHERE condition [RETURNING ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub table: String,
    /// In the order written (never empty).
    pub actions: Vec<UpdateAction>,
    pub where_clause: Expr,
    pub returning: Option<Returning>,
}

/// One `SET` or `REMOVE` of an `UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateAction {
    /// `SET path = value` (a literal, a parameter, a path, `a + b`, `list_append(...)`, ...).
    Set { path: DocPath, value: Expr },
    /// `REMOVE path`.
    Remove(DocPath),
}

/// `DELETE FROM table WHERE condition [RETURNING ALL OLD *]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub table: String,
    pub where_clause: Expr,
    /// Only [`Returning::AllOld`] parses for `DELETE`.
    pub returning: Option<Returning>,
}

/// `RETURNING ... *`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    AllOld,
    ModifiedOld,
    AllNew,
    ModifiedNew,
}

impl Returning {
    /// The words after `RETURNING`, before `*` (e.g. `ALL OLD`).
    pub fn keywords(self) -> &'static str {
        match self {
            Returning::AllOld => "ALL OLD",
            Returning::ModifiedOld => "MODIFIED OLD",
            Returning::AllNew => "ALL NEW",
            Returning::ModifiedNew => "MODIFIED NEW",
        }
    }

    /// The `ReturnValues` name of the same choice (`ALL_OLD`, `UPDATED_OLD`, ...).
    pub fn return_values(self) -> &'static str {
        match self {
            Returning::AllOld => "ALL_OLD",
            Returning::ModifiedOld => "UPDATED_OLD",
            Returning::AllNew => "ALL_NEW",
            Returning::ModifiedNew => "UPDATED_NEW",
        }
    }
}

/// `+` or `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
}

/// What `IS [NOT]` tests for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsTest {
    /// `IS MISSING`: the attribute does not exist.
    Missing,
    /// `IS NULL`.
    Null,
}

/// The documented functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `begins_with(path, value)`.
    BeginsWith,
    /// `contains(path, value)`.
    Contains,
    /// `attribute_type(path, type)`.
    AttributeType,
    /// `size(path)`.
    Size,
    /// `list_append(list, list)` (in `SET`).
    ListAppend,
    /// `set_add(set, set)` (in `SET`).
    SetAdd,
    /// `set_delete(set, set)` (in `SET`).
    SetDelete,
}

impl Function {
    const ALL: [Function; 7] = [
        Function::BeginsWith,
        Function::Contains,
        Function::AttributeType,
        Function::Size,
        Function::ListAppend,
        Function::SetAdd,
        Function::SetDelete,
    ];

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Function::BeginsWith => "begins_with",
            Function::Contains => "contains",
            Function::AttributeType => "attribute_type",
            Function::Size => "size",
            Function::ListAppend => "list_append",
            Function::SetAdd => "set_add",
            Function::SetDelete => "set_delete",
        }
    }

    /// The function named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Function> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Function::Size => 1,
            _ => 2,
        }
    }

    /// Whether it yields a boolean (and so may stand as a condition).
    pub fn is_predicate(self) -> bool {
        matches!(
            self,
            Function::BeginsWith | Function::Contains | Function::AttributeType
        )
    }
}

/// An expression: a `WHERE` condition, a `SET` value, a function argument.
///
/// `AND`, `OR` and `+`/`-` chains are n-ary and flat, so a long chain costs no depth; nesting
/// grows only with parentheses, `NOT`, function calls and collection literals, at most
/// [`crate::MAX_NESTING`] levels in parsed input. Parentheses leave no node of their own, but a
/// parenthesised `AND`/`OR`/`+` chain stays one operand of the chain around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// An attribute or document path.
    Path(DocPath),
    /// A literal or a `?` parameter.
    Value(Value),
    /// A function call, with as many arguments as [`Function::arity`].
    Call {
        func: Function,
        args: Vec<Expr>,
    },
    /// `first op1 e1 op2 e2 ...`, evaluated left to right (`rest` never empty).
    Arith {
        first: Box<Expr>,
        rest: Vec<(ArithOp, Expr)>,
    },
    Compare {
        op: CompareOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `value BETWEEN low AND high`.
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `value IN [v1, v2, ...]` (1 ..= [`crate::MAX_IN_OPERANDS`] values).
    In {
        value: Box<Expr>,
        list: Vec<Value>,
    },
    /// `value IS [NOT] MISSING|NULL`.
    Is {
        value: Box<Expr>,
        test: IsTest,
        negated: bool,
    },
    /// All hold (at least two operands when parsed).
    And(Vec<Expr>),
    /// At least one holds (at least two operands when parsed).
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// A literal value or a parameter. Bind to an attribute value with [`Value::bind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `'text'`
    Str(String),
    /// `12`, `-4.5`, `1E+3`
    Num(Number),
    /// `TRUE` / `FALSE`
    Bool(bool),
    /// `NULL`
    Null,
    /// `?`: the n-th parameter (0-based, in order of appearance in the statement).
    Param(usize),
    /// `[v, ...]`
    List(Vec<Value>),
    /// `<<v, ...>>`: a string, number or binary set (never empty; literal elements are all
    /// strings or all numbers, and not repeated).
    Set(Vec<Value>),
    /// `{'name': v, ...}`: a map; names are unique, kept in the order written.
    Tuple(Vec<(String, Value)>),
}

impl Statement {
    /// The table the statement reads or writes.
    pub fn table(&self) -> &str {
        match self {
            Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => &s.table,
            Statement::Insert(i) => &i.table,
            Statement::Update(u) => &u.table,
            Statement::Delete(d) => &d.table,
        }
    }

    /// The secondary index a `SELECT` reads (`FROM "table"."index"`).
    pub fn index(&self) -> Option<&str> {
        match self {
            Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => {
                s.index.as_deref()
            }
            _ => None,
        }
    }

    /// The `WHERE` condition, if any (`INSERT` has none).
    pub fn where_clause(&self) -> Option<&Expr> {
        match self {
            Statement::Select(s) | Statement::Exists(s) | Statement::NotExists(s) => {
                s.where_clause.as_ref()
            }
            Statement::Insert(_) => None,
            Statement::Update(u) => Some(&u.where_clause),
            Statement::Delete(d) => Some(&d.where_clause),
        }
    }

    /// `true` for `SELECT`, which reads; `false` for the writes and for `EXISTS` and
    /// `NOT EXISTS`, condition checks that transactions allow beside writes.
    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select(_))
    }

    /// How many `?` parameters the statement has. A parsed statement numbers them
    /// `0..parameter_count()` in order of appearance.
    pub fn parameter_count(&self) -> usize {
        let mut n = 0;
        crate::walk::values(self, |v| {
            if matches!(v, Value::Param(_)) {
                n += 1;
            }
        });
        n
    }

    /// Checks the request's parameter count against the statement's.
    ///
    /// # Errors
    /// [`crate::BindError::ParameterCount`] when they differ.
    pub fn check_parameters(&self, given: usize) -> Result<(), crate::BindError> {
        let expected = self.parameter_count();
        if expected == given {
            Ok(())
        } else {
            Err(crate::BindError::ParameterCount { expected, given })
        }
    }
}

impl Expr {
    /// The operands of a top-level `AND` (the expression itself when it is not an `AND`).
    pub fn conjuncts(&self) -> &[Expr] {
        match self {
            Expr::And(cs) => cs,
            other => std::slice::from_ref(other),
        }
    }

    /// `path = value` (either way round) among the top-level `AND` operands, in order: what an
    /// executor needs to find a full primary key or a partition key. A value may be a `?`
    /// parameter or a collection containing some.
    pub fn equalities(&self) -> Vec<(&DocPath, &Value)> {
        self.conjuncts()
            .iter()
            .filter_map(|c| match c {
                Expr::Compare {
                    op: CompareOp::Eq,
                    left,
                    right,
                } => match (&**left, &**right) {
                    (Expr::Path(p), Expr::Value(v)) | (Expr::Value(v), Expr::Path(p)) => {
                        Some((p, v))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Whether the expression yields a boolean by its form (a comparison, `BETWEEN`, `IN`,
    /// `IS`, `AND`/`OR`/`NOT`, a predicate function, `TRUE`/`FALSE` or a parameter). Only
    /// these may stand as a condition.
    pub fn is_condition(&self) -> bool {
        match self {
            Expr::Compare { .. }
            | Expr::Between { .. }
            | Expr::In { .. }
            | Expr::Is { .. }
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Not(_) => true,
            Expr::Call { func, .. } => func.is_predicate(),
            Expr::Value(Value::Bool(_) | Value::Param(_)) => true,
            Expr::Path(_) | Expr::Value(_) | Expr::Arith { .. } => false,
        }
    }
}
