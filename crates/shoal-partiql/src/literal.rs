//! Literals (`'s'`, `12`, `TRUE`, `NULL`, `?`, `[...]`, `<<...>>`, `{...}`) and document paths
//! (`a.b[1]."c d"`).

use std::collections::HashSet;

use shoal_expr::{DocPath, PathElem};
use shoal_types::Number;

use crate::ast::Value;
use crate::error::ParseError;
use crate::lexer::Tok;
use crate::limits::{MAX_LIST_INDEX, MAX_PARAMETERS, MAX_PATH_DEPTH};
use crate::parser::{Parser, is_keyword};

impl Parser<'_> {
    /// One literal value or `?`. Collections are functions of their own: this one is on the
    /// stack once per nesting level, so it stays small.
    pub(crate) fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(Tok::LBracket) => self.list(),
            Some(Tok::LSet) => self.set(),
            Some(Tok::LBrace) => self.tuple().map(Value::Tuple),
            _ => self.scalar(),
        }
    }

    /// `[v, ...]`
    fn list(&mut self) -> Result<Value, ParseError> {
        self.bump();
        self.enter()?;
        let items = self.values_until(&Tok::RBracket, "']'")?;
        self.leave();
        Ok(Value::List(items))
    }

    /// A string, number, boolean, `NULL` or `?`.
    fn scalar(&mut self) -> Result<Value, ParseError> {
        let tok = self.peek().cloned();
        match tok {
            Some(Tok::Str(s)) => {
                self.bump();
                Ok(Value::Str(s))
            }
            Some(Tok::Num(n)) => {
                self.bump();
                Ok(Value::Num(Number::parse(&n)?))
            }
            Some(Tok::Minus) => match self.peek_at(1).cloned() {
                Some(Tok::Num(n)) => {
                    self.bump();
                    self.bump();
                    Ok(Value::Num(Number::parse(&format!("-{n}"))?))
                }
                _ => {
                    self.bump();
                    Err(self.unexpected("a number after '-'"))
                }
            },
            Some(Tok::Param) => {
                if self.params >= MAX_PARAMETERS {
                    return Err(ParseError::TooManyParameters);
                }
                self.bump();
                self.params += 1;
                Ok(Value::Param(self.params - 1))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("TRUE") => {
                self.bump();
                Ok(Value::Bool(true))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("FALSE") => {
                self.bump();
                Ok(Value::Bool(false))
            }
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NULL") => {
                self.bump();
                Ok(Value::Null)
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    /// Comma-separated values up to and including `close` (possibly none).
    fn values_until(&mut self, close: &Tok, what: &str) -> Result<Vec<Value>, ParseError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(&Tok::Comma, &format!("',' or {what}"))?;
        }
    }

    /// `<<v, ...>>`: non-empty; elements are strings, numbers or parameters, the literal ones
    /// all of one type and distinct.
    fn set(&mut self) -> Result<Value, ParseError> {
        let at = self.offset();
        self.bump();
        if self.peek() == Some(&Tok::RSet) {
            return Err(self.error_at(at, "a set cannot be empty"));
        }
        self.enter()?;
        let mut items = Vec::new();
        let (mut strings, mut numbers) = (HashSet::new(), HashSet::new());
        loop {
            let elem_at = self.offset();
            let v = self.value()?;
            let fresh = match &v {
                Value::Str(s) => strings.insert(s.clone()),
                Value::Num(n) => numbers.insert(*n),
                Value::Param(_) => true,
                _ => {
                    return Err(
                        self.error_at(elem_at, "a set holds only strings, numbers or parameters")
                    );
                }
            };
            if !strings.is_empty() && !numbers.is_empty() {
                return Err(self.error_at(
                    elem_at,
                    "a set's elements must all be strings or all numbers",
                ));
            }
            if !fresh {
                return Err(self.error_at(elem_at, "a set holds each element once"));
            }
            items.push(v);
            if self.eat(&Tok::RSet) {
                break;
            }
            self.expect(&Tok::Comma, "',' or '>>'")?;
        }
        self.leave();
        Ok(Value::Set(items))
    }

    /// `{'name': value, ...}` (possibly empty); names unique.
    pub(crate) fn tuple(&mut self) -> Result<Vec<(String, Value)>, ParseError> {
        self.expect(&Tok::LBrace, "'{'")?;
        self.enter()?;
        let mut entries = Vec::new();
        let mut names = HashSet::new();
        if !self.eat(&Tok::RBrace) {
            loop {
                let at = self.offset();
                let Some(Tok::Str(name)) = self.peek().cloned() else {
                    return Err(self.unexpected("an attribute name in single quotes"));
                };
                self.bump();
                if !names.insert(name.clone()) {
                    return Err(self.error_at(at, format!("attribute name '{name}' appears twice")));
                }
                self.expect(&Tok::Colon, "':'")?;
                entries.push((name, self.value()?));
                if self.eat(&Tok::RBrace) {
                    break;
                }
                self.expect(&Tok::Comma, "',' or '}'")?;
            }
        }
        self.leave();
        Ok(entries)
    }

    /// A path element name: a bare word that is not a keyword, or a non-empty quoted identifier.
    fn name(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Quoted(q)) if !q.is_empty() => {
                let q = q.clone();
                self.bump();
                Ok(q)
            }
            Some(Tok::Word(w)) if !is_keyword(w) => {
                let w = w.clone();
                self.bump();
                Ok(w)
            }
            Some(Tok::Word(w)) => {
                let w = w.clone();
                Err(self.error(format!(
                    "'{w}' is a keyword; write an attribute of that name double-quoted (\"{w}\")"
                )))
            }
            _ => Err(self.unexpected("an attribute name")),
        }
    }

    /// `name ('.' name | '[' index ']')*`, at most [`MAX_PATH_DEPTH`] dereferences.
    pub(crate) fn path(&mut self) -> Result<DocPath, ParseError> {
        let mut elems = vec![PathElem::Name(self.name()?)];
        loop {
            let at = self.offset();
            if self.eat(&Tok::Dot) {
                elems.push(PathElem::Name(self.name()?));
            } else if self.eat(&Tok::LBracket) {
                let index = match self.peek() {
                    Some(Tok::Num(n)) if n.bytes().all(|b| b.is_ascii_digit()) => {
                        n.parse::<usize>().ok().filter(|i| *i <= MAX_LIST_INDEX)
                    }
                    _ => None,
                };
                let Some(index) = index else {
                    return Err(
                        self.unexpected(&format!("a list index from 0 to {MAX_LIST_INDEX}"))
                    );
                };
                self.bump();
                self.expect(&Tok::RBracket, "']'")?;
                elems.push(PathElem::Index(index));
            } else {
                break;
            }
            if elems.len() > MAX_PATH_DEPTH + 1 {
                return Err(self.error_at(
                    at,
                    format!("a document path may have at most {MAX_PATH_DEPTH} dereferences"),
                ));
            }
        }
        Ok(DocPath { elems })
    }
}
