//! Condition and filter expressions: [`Condition`], its parser and its evaluator.

use std::borrow::Cow;

use shoal_types::{AttributeValue, Item, Number};

use crate::compare::{self, compare_scalars, values_equal};
use crate::lexer::Tok;
use crate::parser::{Parser, wrong_arity, wrong_operand_type};
use crate::path::DocPath;
use crate::{ExprContext, ExprError, ExprKind};

/// Most operands on the right of `IN`.
pub const MAX_IN_OPERANDS: usize = 100;

/// The attribute type names `attribute_type` accepts.
const TYPE_NAMES: &[&str] = &["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// Which parameter a condition comes from (names the error prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    /// `ConditionExpression` (PutItem, UpdateItem, DeleteItem, transactions).
    Condition,
    /// `FilterExpression` (Query, Scan).
    Filter,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// An operand of a comparison or function.
#[derive(Debug, Clone)]
pub enum Operand {
    /// The value at a document path of the item (absent if the path does not exist).
    Path(DocPath),
    /// A substituted `:value`.
    Value(AttributeValue),
    /// `size(path)`: a number, absent if the path does not exist or has no size.
    Size(DocPath),
}

impl Operand {
    /// The operand's value for `item`, or `None` when it does not exist.
    pub fn resolve<'i>(&'i self, item: &'i Item) -> Option<Cow<'i, AttributeValue>> {
        match self {
            Operand::Path(p) => p.get(item).map(Cow::Borrowed),
            Operand::Value(v) => Some(Cow::Borrowed(v)),
            Operand::Size(p) => {
                let n = compare::size(p.get(item)?)?;
                let num: Number = n.to_string().parse().ok()?;
                Some(Cow::Owned(AttributeValue::N(num)))
            }
        }
    }
}

/// A parsed condition (placeholders substituted). Evaluate with [`Condition::evaluate`].
///
/// `AND` and `OR` are n-ary and flat: `a AND b AND c` is one [`Condition::And`] of three
/// operands, and the legacy parameters join any number of conditions into one. Nesting grows
/// only with parentheses and `NOT` (at most [`crate::MAX_NESTING`] levels in an expression), so
/// evaluating, walking and dropping a condition built from client input never recurses deeply,
/// however many operands it has. [`Condition::depth`] measures the nesting of any condition
/// (the wire decoder bounds it for conditions that arrive from other nodes).
#[derive(Debug, Clone)]
pub enum Condition {
    Compare {
        op: CompareOp,
        left: Operand,
        right: Operand,
    },
    Between {
        value: Operand,
        low: Operand,
        high: Operand,
    },
    In {
        value: Operand,
        list: Vec<Operand>,
    },
    AttributeExists(DocPath),
    AttributeNotExists(DocPath),
    AttributeType(DocPath, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    /// All operands hold (true when empty).
    And(Vec<Condition>),
    /// At least one operand holds (false when empty).
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

impl Operand {
    fn path(&self) -> Option<&DocPath> {
        match self {
            Operand::Path(p) | Operand::Size(p) => Some(p),
            Operand::Value(_) => None,
        }
    }
}

impl Condition {
    /// The top-level attribute names the condition reads, in order of appearance (with repeats).
    /// Query uses it to reject filters on key attributes.
    pub fn top_level_names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_names(&mut out);
        out
    }

    fn collect_names<'a>(&'a self, out: &mut Vec<&'a str>) {
        let operand = |o: &'a Operand, out: &mut Vec<&'a str>| {
            if let Some(p) = o.path() {
                out.push(p.top());
            }
        };
        match self {
            Condition::Compare { left, right, .. } => {
                operand(left, out);
                operand(right, out);
            }
            Condition::Between { value, low, high } => {
                operand(value, out);
                operand(low, out);
                operand(high, out);
            }
            Condition::In { value, list } => {
                operand(value, out);
                for o in list {
                    operand(o, out);
                }
            }
            Condition::AttributeExists(p) | Condition::AttributeNotExists(p) => out.push(p.top()),
            Condition::AttributeType(p, o) => {
                out.push(p.top());
                operand(o, out);
            }
            Condition::BeginsWith(a, b) | Condition::Contains(a, b) => {
                operand(a, out);
                operand(b, out);
            }
            Condition::And(cs) | Condition::Or(cs) => {
                for c in cs {
                    c.collect_names(out);
                }
            }
            Condition::Not(c) => c.collect_names(out),
        }
    }

    /// Evaluates against `item` (use an empty item when the item does not exist).
    ///
    /// Comparisons involving a missing operand are false, except `<>`, which is the negation
    /// of `=`. Ordering comparisons and `BETWEEN` hold only between values of the same scalar
    /// type (`S`, `N`, `B`).
    pub fn evaluate(&self, item: &Item) -> bool {
        match self {
            Condition::Compare { op, left, right } => {
                let (l, r) = (left.resolve(item), right.resolve(item));
                if *op == CompareOp::Ne {
                    return !matches!((&l, &r), (Some(l), Some(r)) if values_equal(l, r));
                }
                let (Some(l), Some(r)) = (l, r) else {
                    return false;
                };
                match op {
                    CompareOp::Eq => values_equal(&l, &r),
                    CompareOp::Ne => !values_equal(&l, &r),
                    CompareOp::Lt => compare_scalars(&l, &r).is_some_and(|o| o.is_lt()),
                    CompareOp::Le => compare_scalars(&l, &r).is_some_and(|o| o.is_le()),
                    CompareOp::Gt => compare_scalars(&l, &r).is_some_and(|o| o.is_gt()),
                    CompareOp::Ge => compare_scalars(&l, &r).is_some_and(|o| o.is_ge()),
                }
            }
            Condition::Between { value, low, high } => {
                let (Some(v), Some(lo), Some(hi)) =
                    (value.resolve(item), low.resolve(item), high.resolve(item))
                else {
                    return false;
                };
                compare_scalars(&v, &lo).is_some_and(|o| o.is_ge())
                    && compare_scalars(&v, &hi).is_some_and(|o| o.is_le())
            }
            Condition::In { value, list } => {
                let Some(v) = value.resolve(item) else {
                    return false;
                };
                list.iter()
                    .any(|o| o.resolve(item).is_some_and(|w| values_equal(&v, &w)))
            }
            Condition::AttributeExists(p) => p.get(item).is_some(),
            Condition::AttributeNotExists(p) => p.get(item).is_none(),
            Condition::AttributeType(p, t) => match (p.get(item), t.resolve(item)) {
                (Some(v), Some(t)) => {
                    matches!(t.as_ref(), AttributeValue::S(name) if name == v.type_name())
                }
                _ => false,
            },
            Condition::BeginsWith(a, b) => match (a.resolve(item), b.resolve(item)) {
                (Some(a), Some(b)) => compare::begins_with(&a, &b),
                _ => false,
            },
            Condition::Contains(a, b) => match (a.resolve(item), b.resolve(item)) {
                (Some(a), Some(b)) => compare::contains(&a, &b),
                _ => false,
            },
            Condition::And(cs) => cs.iter().all(|c| c.evaluate(item)),
            Condition::Or(cs) => cs.iter().any(|c| c.evaluate(item)),
            Condition::Not(a) => !a.evaluate(item),
        }
    }

    /// The nesting depth: 1 for a comparison or function, plus one per enclosing `AND`, `OR`
    /// or `NOT`. Computed with an explicit stack (no recursion), so it is safe on any input.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((c, d)) = stack.pop() {
            max = max.max(d);
            match c {
                Condition::And(cs) | Condition::Or(cs) => {
                    stack.extend(cs.iter().map(|c| (c, d + 1)));
                }
                Condition::Not(c) => stack.push((c, d + 1)),
                _ => {}
            }
        }
        max
    }

    /// `conditions` joined with `AND`: the single condition itself when there is one, an
    /// operand list flattened into one `And` when some are `And`s already.
    pub fn and(conditions: Vec<Condition>) -> Condition {
        Condition::join(conditions, false)
    }

    /// `conditions` joined with `OR`, as [`Condition::and`].
    pub fn or(conditions: Vec<Condition>) -> Condition {
        Condition::join(conditions, true)
    }

    fn join(conditions: Vec<Condition>, or: bool) -> Condition {
        let mut flat = Vec::with_capacity(conditions.len());
        for c in conditions {
            match c {
                Condition::Or(cs) if or => flat.extend(cs),
                Condition::And(cs) if !or => flat.extend(cs),
                c => flat.push(c),
            }
        }
        if flat.len() == 1
            && let Some(c) = flat.pop()
        {
            return c;
        }
        if or {
            Condition::Or(flat)
        } else {
            Condition::And(flat)
        }
    }
}

/// Parses a `ConditionExpression` or `FilterExpression`, substituting placeholders from `ctx`
/// (and marking them used).
///
/// # Errors
/// DynamoDB's `Invalid ConditionExpression: ...` / `Invalid FilterExpression: ...` messages:
/// empty expression, size over 4 KB, syntax errors, reserved words, undefined placeholders,
/// unknown functions, wrong operand counts or types, more than 300 operators, more than 100
/// `IN` operands, paths deeper than 32.
pub fn parse_condition(
    text: &str,
    ctx: &mut ExprContext,
    which: ConditionKind,
) -> Result<Condition, ExprError> {
    let kind = match which {
        ConditionKind::Condition => ExprKind::Condition,
        ConditionKind::Filter => ExprKind::Filter,
    };
    let mut p = Parser::new(text, kind, ctx)?;
    let c = p.parse_or()?;
    p.expect_end()?;
    Ok(c)
}

fn comparator(t: Option<&Tok>) -> Option<CompareOp> {
    match t? {
        Tok::Eq => Some(CompareOp::Eq),
        Tok::Ne => Some(CompareOp::Ne),
        Tok::Lt => Some(CompareOp::Lt),
        Tok::Le => Some(CompareOp::Le),
        Tok::Gt => Some(CompareOp::Gt),
        Tok::Ge => Some(CompareOp::Ge),
        _ => None,
    }
}

/// Two constant bounds of `BETWEEN` must be of one type (`BETWEEN` orders values of one type,
/// so `:n AND :s` could never hold) and in order. Checked at parse in every expression kind;
/// bounds read from the item are not (such a `BETWEEN` is simply false).
fn check_between_bounds(
    kind: ExprKind,
    lo: &AttributeValue,
    hi: &AttributeValue,
) -> Result<(), ExprError> {
    if lo.type_name() != hi.type_name() {
        return Err(kind.invalid(format!(
            "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            compare::render(lo),
            compare::render(hi)
        )));
    }
    if compare_scalars(lo, hi).is_some_and(|o| o.is_gt()) {
        return Err(kind.invalid(format!(
            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            compare::render(lo),
            compare::render(hi)
        )));
    }
    Ok(())
}

fn is_condition_function(name: &str) -> bool {
    matches!(
        name,
        "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains"
    )
}

impl Parser<'_, '_, '_> {
    pub(crate) fn parse_or(&mut self) -> Result<Condition, ExprError> {
        let mut operands = vec![self.parse_and()?];
        while self.eat_keyword("OR") {
            self.count_op()?;
            operands.push(self.parse_and()?);
        }
        Ok(Condition::or(operands))
    }

    fn parse_and(&mut self) -> Result<Condition, ExprError> {
        let mut operands = vec![self.parse_not()?];
        while self.eat_keyword("AND") {
            self.count_op()?;
            operands.push(self.parse_not()?);
        }
        Ok(Condition::and(operands))
    }

    fn parse_not(&mut self) -> Result<Condition, ExprError> {
        if self.eat_keyword("NOT") {
            self.count_op()?;
            self.enter()?;
            let inner = self.parse_not()?;
            self.leave();
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Condition, ExprError> {
        let open = self.position();
        if self.eat(&Tok::LParen) {
            self.enter()?;
            let c = self.parse_or()?;
            // `((...))`: the whole group is one inner group.
            if self.last_group == Some((open + 1, self.position())) {
                return Err(self
                    .kind
                    .invalid("The expression has redundant parentheses;"));
            }
            self.expect(&Tok::RParen)?;
            self.leave();
            self.last_group = Some((open, self.position()));
            return Ok(c);
        }
        if let (Some(Tok::Ident(name)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            let name = name.clone();
            if is_condition_function(&name) {
                return self.parse_condition_function(&name);
            }
        }
        let left = self.parse_operand()?;
        if let Some(op) = comparator(self.peek()) {
            self.bump();
            self.count_op()?;
            let right = self.parse_operand()?;
            return Ok(Condition::Compare { op, left, right });
        }
        if self.eat_keyword("BETWEEN") {
            self.count_op()?;
            let low = self.parse_operand()?;
            if !self.eat_keyword("AND") {
                return Err(self.syntax_error());
            }
            let high = self.parse_operand()?;
            if let (Operand::Value(lo), Operand::Value(hi)) = (&low, &high) {
                check_between_bounds(self.kind, lo, hi)?;
            }
            return Ok(Condition::Between {
                value: left,
                low,
                high,
            });
        }
        if self.eat_keyword("IN") {
            self.count_op()?;
            let list = self.parse_args(|p| p.parse_operand())?;
            if list.len() > MAX_IN_OPERANDS {
                return Err(self.kind.invalid(format!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    list.len()
                )));
            }
            return Ok(Condition::In { value: left, list });
        }
        if matches!(left, Operand::Size(_)) {
            return Err(self.kind.invalid(
                "The function is not allowed to be used this way in an expression; function: size",
            ));
        }
        Err(self.syntax_error())
    }

    /// `attribute_exists`, `attribute_not_exists`, `attribute_type`, `begins_with`, `contains`.
    fn parse_condition_function(&mut self, name: &str) -> Result<Condition, ExprError> {
        self.bump();
        self.count_op()?;
        let args = self.parse_args(|p| p.parse_operand())?;
        let kind = self.kind;
        let arity = if name.starts_with("attribute_") && name != "attribute_type" {
            1
        } else {
            2
        };
        let mut it = args.into_iter();
        let (Some(a), b, None) = (it.next(), it.next(), it.next()) else {
            return Err(wrong_arity(kind, name, arity + 1));
        };
        let n = 1 + usize::from(b.is_some());
        if n != arity {
            return Err(wrong_arity(kind, name, n));
        }
        let require_path = |o: Operand| match o {
            Operand::Path(p) => Ok(p),
            _ => Err(kind.invalid(format!(
                "Operator or function requires a document path; operator or function: {name}"
            ))),
        };
        match (name, b) {
            ("attribute_exists", None) => Ok(Condition::AttributeExists(require_path(a)?)),
            ("attribute_not_exists", None) => Ok(Condition::AttributeNotExists(require_path(a)?)),
            ("attribute_type", Some(t)) => {
                let path = require_path(a)?;
                // "You must use an expression attribute value for the type parameter"
                // (Expressions.OperatorsAndFunctions.md): not a path, not size().
                let t = match t {
                    Operand::Value(v) => Operand::Value(v),
                    Operand::Path(_) | Operand::Size(_) => {
                        return Err(wrong_operand_type(kind, name, "PATH"));
                    }
                };
                if let Operand::Value(v) = &t {
                    match v {
                        AttributeValue::S(s) if TYPE_NAMES.contains(&s.as_str()) => {}
                        AttributeValue::S(s) => {
                            return Err(kind.invalid(format!(
                                "Invalid attribute type name found; type: {s}, valid types: {{ B,NULL,SS,BOOL,L,BS,N,NS,S,M }}"
                            )));
                        }
                        other => return Err(wrong_operand_type(kind, name, other.type_name())),
                    }
                }
                Ok(Condition::AttributeType(path, t))
            }
            ("begins_with", Some(b)) => {
                for o in [&a, &b] {
                    if let Operand::Value(v) = o
                        && !matches!(v, AttributeValue::S(_) | AttributeValue::B(_))
                    {
                        return Err(wrong_operand_type(kind, name, v.type_name()));
                    }
                }
                Ok(Condition::BeginsWith(a, b))
            }
            ("contains", Some(b)) => {
                if let (Operand::Path(x), Operand::Path(y)) = (&a, &b)
                    && x == y
                {
                    return Err(kind.invalid(format!(
                            "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: {x}"
                        )));
                }
                Ok(Condition::Contains(a, b))
            }
            _ => Err(wrong_arity(kind, name, n)),
        }
    }

    /// A path, a `:value`, or `size(path)`.
    pub(crate) fn parse_operand(&mut self) -> Result<Operand, ExprError> {
        match self.peek() {
            Some(Tok::ValuePh(_)) => Ok(Operand::Value(self.parse_value()?)),
            Some(Tok::Ident(name)) if self.peek_at(1) == Some(&Tok::LParen) => {
                let name = name.clone();
                match name.as_str() {
                    "size" => {
                        self.bump();
                        self.count_op()?;
                        let args = self.parse_args(|p| p.parse_operand())?;
                        let n = args.len();
                        let mut it = args.into_iter();
                        match (it.next(), it.next()) {
                            (Some(Operand::Path(p)), None) => Ok(Operand::Size(p)),
                            (Some(_), None) => Err(self.kind.invalid(
                                "Operator or function requires a document path; operator or function: size",
                            )),
                            _ => Err(wrong_arity(self.kind, "size", n)),
                        }
                    }
                    f if is_condition_function(f) => Err(self.kind.invalid(format!(
                        "The function is not allowed to be used this way in an expression; function: {f}"
                    ))),
                    "list_append" | "if_not_exists" => Err(self.kind.invalid(format!(
                        "The function is not allowed in a condition expression; function: {name}"
                    ))),
                    _ => Err(self.kind.invalid(format!("Invalid function name; function: {name}"))),
                }
            }
            _ if self.at_path_start() => Ok(Operand::Path(self.parse_path()?)),
            _ => Err(self.syntax_error()),
        }
    }
}
