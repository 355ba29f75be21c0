//! The expression grammar, loosest-binding first:
//!
//! ```text
//! condition := or                      -- must be a condition (Expr::is_condition)
//! or        := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT not | predicate
//! predicate := operand [ cmp operand | [NOT] IN list | [NOT] BETWEEN operand AND operand
//!                      | IS [NOT] (MISSING | NULL) ]
//! operand   := primary (('+' | '-') primary)*
//! primary   := value | path | function '(' operand, ... ')' | '(' or ')'
//! list      := '[' value, ... ']' | '(' value, ... ')'
//! ```

use shoal_expr::CompareOp;

use crate::ast::{ArithOp, Expr, Function, IsTest};
use crate::error::ParseError;
use crate::lexer::Tok;
use crate::limits::MAX_IN_OPERANDS;
use crate::parser::{Parser, is_keyword};

impl Parser<'_> {
    /// A condition (a `WHERE` clause).
    pub(crate) fn condition(&mut self) -> Result<Expr, ParseError> {
        let at = self.offset();
        let e = self.or()?;
        self.check_condition(&e, at)?;
        Ok(e)
    }

    fn check_condition(&self, e: &Expr, at: usize) -> Result<(), ParseError> {
        if e.is_condition() {
            Ok(())
        } else {
            Err(self.error_at(
                at,
                "expected a condition (a comparison, BETWEEN, IN, IS, a function such as begins_with, or AND/OR/NOT of these)",
            ))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let at = self.offset();
        let first = self.and()?;
        if !self.at_word("OR") {
            return Ok(first);
        }
        self.check_condition(&first, at)?;
        let mut operands = vec![first];
        while self.eat_word("OR") {
            let at = self.offset();
            let e = self.and()?;
            self.check_condition(&e, at)?;
            operands.push(e);
        }
        Ok(Expr::Or(operands))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let at = self.offset();
        let first = self.not()?;
        if !self.at_word("AND") {
            return Ok(first);
        }
        self.check_condition(&first, at)?;
        let mut operands = vec![first];
        while self.eat_word("AND") {
            let at = self.offset();
            let e = self.not()?;
            self.check_condition(&e, at)?;
            operands.push(e);
        }
        Ok(Expr::And(operands))
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if !self.eat_word("NOT") {
            return self.predicate();
        }
        self.enter()?;
        let at = self.offset();
        let inner = self.not()?;
        self.check_condition(&inner, at)?;
        self.leave();
        Ok(Expr::Not(Box::new(inner)))
    }

    fn predicate(&mut self) -> Result<Expr, ParseError> {
        let left = self.operand()?;
        self.predicate_rest(left)
    }

    /// What follows a predicate's left operand (a comparison, `IN`, ... or nothing).
    fn predicate_rest(&mut self, left: Expr) -> Result<Expr, ParseError> {
        let op = match self.peek() {
            Some(Tok::Eq) => Some(CompareOp::Eq),
            Some(Tok::Ne) => Some(CompareOp::Ne),
            Some(Tok::Lt) => Some(CompareOp::Lt),
            Some(Tok::Le) => Some(CompareOp::Le),
            Some(Tok::Gt) => Some(CompareOp::Gt),
            Some(Tok::Ge) => Some(CompareOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let right = self.operand()?;
            return Ok(Expr::Compare {
                op,
                left: Box::new(left),
                right: Box::new(right),
            });
        }
        // `a NOT IN ...` and `a NOT BETWEEN ...` are `NOT (a IN ...)`, `NOT (a BETWEEN ...)`.
        let negated = self.at_word("NOT")
            && matches!(self.peek_at(1), Some(Tok::Word(w))
                if w.eq_ignore_ascii_case("IN") || w.eq_ignore_ascii_case("BETWEEN"));
        if negated {
            self.bump();
        }
        let e = if self.eat_word("IN") {
            let list = self.in_list()?;
            Expr::In {
                value: Box::new(left),
                list,
            }
        } else if self.eat_word("BETWEEN") {
            let low = self.operand()?;
            self.expect_word("AND")?;
            let high = self.operand()?;
            Expr::Between {
                value: Box::new(left),
                low: Box::new(low),
                high: Box::new(high),
            }
        } else if self.eat_word("IS") {
            let is_not = self.eat_word("NOT");
            let test = if self.eat_word("MISSING") {
                IsTest::Missing
            } else if self.eat_word("NULL") {
                IsTest::Null
            } else {
                return Err(self.unexpected("MISSING or NULL"));
            };
            Expr::Is {
                value: Box::new(left),
                test,
                negated: is_not,
            }
        } else {
            return Ok(left);
        };
        Ok(if negated { Expr::Not(Box::new(e)) } else { e })
    }

    /// `[v, ...]` or `(v, ...)` after `IN`: 1 ..= [`MAX_IN_OPERANDS`] values.
    fn in_list(&mut self) -> Result<Vec<crate::Value>, ParseError> {
        let close = match self.peek() {
            Some(Tok::LBracket) => Tok::RBracket,
            Some(Tok::LParen) => Tok::RParen,
            _ => return Err(self.unexpected("a list of values '[...]' after IN")),
        };
        self.bump();
        let mut list = vec![self.value()?];
        while self.eat(&Tok::Comma) {
            if list.len() == MAX_IN_OPERANDS {
                return Err(self.error(format!("IN takes at most {MAX_IN_OPERANDS} values")));
            }
            list.push(self.value()?);
        }
        self.expect(&close, &format!("',' or '{}'", close.describe()))?;
        Ok(list)
    }

    /// An operand: primaries joined by `+` and `-` (a `SET` value, a comparison's side).
    pub(crate) fn operand(&mut self) -> Result<Expr, ParseError> {
        let first = self.primary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Plus) => ArithOp::Add,
                Some(Tok::Minus) => ArithOp::Sub,
                _ => break,
            };
            self.bump();
            rest.push((op, self.primary()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Arith {
                first: Box::new(first),
                rest,
            }
        })
    }

    /// Dispatches on the first token. The arms are functions of their own: this one and
    /// [`Parser::paren`] are on the stack once per nesting level, so they stay small.
    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.primary_kind() {
            Primary::Paren => self.paren(),
            Primary::Call => self.call(),
            Primary::Path => self.path().map(Expr::Path),
            Primary::Value => self.value().map(Expr::Value),
            Primary::Invalid => Err(self.primary_error()),
        }
    }

    fn primary_kind(&self) -> Primary {
        match self.peek() {
            Some(Tok::LParen) => Primary::Paren,
            Some(Tok::Word(w)) if !is_keyword(w) => {
                if self.peek_at(1) == Some(&Tok::LParen) {
                    Primary::Call
                } else {
                    Primary::Path
                }
            }
            Some(Tok::Quoted(_)) => Primary::Path,
            Some(
                Tok::Str(_)
                | Tok::Num(_)
                | Tok::Minus
                | Tok::Param
                | Tok::LBracket
                | Tok::LBrace
                | Tok::LSet,
            ) => Primary::Value,
            Some(Tok::Word(w))
                if ["TRUE", "FALSE", "NULL"]
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(w)) =>
            {
                Primary::Value
            }
            _ => Primary::Invalid,
        }
    }

    #[cold]
    fn primary_error(&self) -> ParseError {
        match self.peek() {
            Some(Tok::Word(w)) => self.error(format!(
                "unexpected keyword '{w}'; expected an expression (an attribute named {w} must be double-quoted: \"{w}\")"
            )),
            _ => self.unexpected("an expression"),
        }
    }

    /// `( or )`.
    fn paren(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        self.enter()?;
        let e = self.or()?;
        self.expect(&Tok::RParen, "')'")?;
        self.leave();
        Ok(e)
    }

    /// `name ( operand, ... )`.
    fn call(&mut self) -> Result<Expr, ParseError> {
        let at = self.offset();
        let Some(func) = self.function_name() else {
            return Err(self.unsupported_function());
        };
        self.bump();
        self.bump();
        self.enter()?;
        let mut args = Vec::new();
        if self.peek() != Some(&Tok::RParen) {
            args.push(self.operand()?);
            while self.eat(&Tok::Comma) {
                args.push(self.operand()?);
            }
        }
        self.expect(&Tok::RParen, "',' or ')'")?;
        self.leave();
        if args.len() != func.arity() {
            return Err(self.wrong_arity(at, func, args.len()));
        }
        Ok(Expr::Call { func, args })
    }

    fn function_name(&self) -> Option<Function> {
        match self.peek() {
            Some(Tok::Word(w)) => Function::from_name(w),
            _ => None,
        }
    }

    #[cold]
    fn unsupported_function(&self) -> ParseError {
        let name = self.peek().map(Tok::describe).unwrap_or_default();
        self.error(format!("unsupported function '{name}'"))
    }

    #[cold]
    fn wrong_arity(&self, at: usize, func: Function, n: usize) -> ParseError {
        self.error_at(
            at,
            format!(
                "function {} takes {} argument(s), not {n}",
                func.name(),
                func.arity()
            ),
        )
    }
}

/// What a primary expression starts with.
enum Primary {
    Paren,
    Call,
    Path,
    Value,
    Invalid,
}
