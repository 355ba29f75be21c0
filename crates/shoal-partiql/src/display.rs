//! `Display` for statements, expressions and values: canonical PartiQL text that parses back
//! to the same tree. Identifiers are always double-quoted (so keywords and odd characters need
//! no special case), keywords upper-case, and parentheses written only where precedence needs
//! them (and around a nested `AND`/`OR`/`+` chain, which the parser keeps as one operand).

use std::fmt::{self, Display, Formatter, Write};

use shoal_expr::{DocPath, PathElem};

use crate::ast::{
    ArithOp, Expr, IsTest, OrderBy, Projection, Select, Statement, UpdateAction, Value,
};

/// Binding strength: a child printed where at least `min` is needed gets parentheses if its
/// own is lower.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Or(_) => 1,
        Expr::And(_) => 2,
        Expr::Not(_) => 3,
        Expr::Compare { .. } | Expr::Between { .. } | Expr::In { .. } | Expr::Is { .. } => 4,
        Expr::Arith { .. } => 5,
        Expr::Path(_) | Expr::Value(_) | Expr::Call { .. } => 6,
    }
}

/// `e`, parenthesised if it binds less tightly than `min`.
struct At<'a>(&'a Expr, u8);

impl Display for At<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if precedence(self.0) < self.1 {
            write!(f, "({})", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Writes `name` as a double-quoted identifier.
fn write_ident(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in name.chars() {
        if c == '"' {
            f.write_str("\"\"")?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char('"')
}

/// Writes `s` as a single-quoted string literal.
fn write_str(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        if c == '\'' {
            f.write_str("''")?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char('\'')
}

/// A document path in PartiQL syntax (`"a"."b"[1]`); [`DocPath`]'s own `Display` is the
/// `[a, b, [1]]` form of DynamoDB's expression errors.
pub struct PathDisplay<'a>(pub &'a DocPath);

impl Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.elems.iter().enumerate() {
            match e {
                PathElem::Name(n) => {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    write_ident(f, n)?;
                }
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn write_list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, item)?;
    }
    Ok(())
}

fn write_tuple(f: &mut Formatter<'_>, entries: &[(String, Value)]) -> fmt::Result {
    f.write_char('{')?;
    write_list(f, entries, |f, (k, v)| {
        write_str(f, k)?;
        write!(f, ": {v}")
    })?;
    f.write_char('}')
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write_str(f, s),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(true) => f.write_str("TRUE"),
            Value::Bool(false) => f.write_str("FALSE"),
            Value::Null => f.write_str("NULL"),
            Value::Param(_) => f.write_char('?'),
            Value::List(vs) => {
                f.write_char('[')?;
                write_list(f, vs, |f, v| write!(f, "{v}"))?;
                f.write_char(']')
            }
            Value::Set(vs) => {
                f.write_str("<<")?;
                write_list(f, vs, |f, v| write!(f, "{v}"))?;
                f.write_str(">>")
            }
            Value::Tuple(entries) => write_tuple(f, entries),
        }
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(p) => write!(f, "{}", PathDisplay(p)),
            Expr::Value(v) => write!(f, "{v}"),
            Expr::Call { func, args } => {
                write!(f, "{}(", func.name())?;
                write_list(f, args, |f, a| write!(f, "{}", At(a, 5)))?;
                f.write_char(')')
            }
            Expr::Arith { first, rest } => {
                write!(f, "{}", At(first, 6))?;
                for (op, e) in rest {
                    let sym = match op {
                        ArithOp::Add => '+',
                        ArithOp::Sub => '-',
                    };
                    write!(f, " {sym} {}", At(e, 6))?;
                }
                Ok(())
            }
            Expr::Compare { op, left, right } => {
                write!(f, "{} {} {}", At(left, 5), op.symbol(), At(right, 5))
            }
            Expr::Between { value, low, high } => write!(
                f,
                "{} BETWEEN {} AND {}",
                At(value, 5),
                At(low, 5),
                At(high, 5)
            ),
            Expr::In { value, list } => {
                write!(f, "{} IN [", At(value, 5))?;
                write_list(f, list, |f, v| write!(f, "{v}"))?;
                f.write_char(']')
            }
            Expr::Is {
                value,
                test,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                let test = match test {
                    IsTest::Missing => "MISSING",
                    IsTest::Null => "NULL",
                };
                write!(f, "{} IS {not}{test}", At(value, 5))
            }
            Expr::And(cs) => {
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    write!(f, "{}", At(c, 3))?;
                }
                Ok(())
            }
            Expr::Or(cs) => {
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    write!(f, "{}", At(c, 2))?;
                }
                Ok(())
            }
            Expr::Not(c) => write!(f, "NOT {}", At(c, 3)),
        }
    }
}

fn write_select(f: &mut Formatter<'_>, s: &Select) -> fmt::Result {
    f.write_str("SELECT ")?;
    match &s.projection {
        Projection::All => f.write_char('*')?,
        Projection::Paths(ps) => write_list(f, ps, |f, p| write!(f, "{}", PathDisplay(p)))?,
    }
    f.write_str(" FROM ")?;
    write_ident(f, &s.table)?;
    if let Some(index) = &s.index {
        f.write_char('.')?;
        write_ident(f, index)?;
    }
    if let Some(w) = &s.where_clause {
        write!(f, " WHERE {w}")?;
    }
    if !s.order_by.is_empty() {
        f.write_str(" ORDER BY ")?;
        write_list(f, &s.order_by, |f, OrderBy { path, descending }| {
            write!(f, "{}", PathDisplay(path))?;
            if *descending {
                f.write_str(" DESC")?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Select(s) => write_select(f, s),
            Statement::Exists(s) => {
                f.write_str("EXISTS(")?;
                write_select(f, s)?;
                f.write_char(')')
            }
            Statement::NotExists(s) => {
                f.write_str("NOT EXISTS(")?;
                write_select(f, s)?;
                f.write_char(')')
            }
            Statement::Insert(i) => {
                f.write_str("INSERT INTO ")?;
                write_ident(f, &i.table)?;
                f.write_str(" VALUE ")?;
                write_tuple(f, &i.item)
            }
            Statement::Update(u) => {
                f.write_str("UPDATE ")?;
                write_ident(f, &u.table)?;
                for a in &u.actions {
                    match a {
                        UpdateAction::Set { path, value } => {
                            write!(f, " SET {} = {}", PathDisplay(path), At(value, 5))?;
                        }
                        UpdateAction::Remove(path) => write!(f, " REMOVE {}", PathDisplay(path))?,
                    }
                }
                write!(f, " WHERE {}", u.where_clause)?;
                if let Some(r) = u.returning {
                    write!(f, " RETURNING {} *", r.keywords())?;
                }
                Ok(())
            }
            Statement::Delete(d) => {
                f.write_str("DELETE FROM ")?;
                write_ident(f, &d.table)?;
                write!(f, " WHERE {}", d.where_clause)?;
                if let Some(r) = d.returning {
                    write!(f, " RETURNING {} *", r.keywords())?;
                }
                Ok(())
            }
        }
    }
}
