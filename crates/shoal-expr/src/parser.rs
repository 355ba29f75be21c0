//! The shared recursive-descent machinery: token cursor, syntax errors, limits, document paths
//! and placeholder substitution. The grammar of each expression kind lives in its own module.

use shoal_types::AttributeValue;

use crate::context::MAX_PLACEHOLDER_LEN;
use crate::lexer::{Tok, Token, tokenize};
use crate::path::{DocPath, PathElem};
use crate::reserved::is_reserved;
use crate::{ExprContext, ExprError, ExprKind};

/// Longest expression string, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Most operators and functions in one expression.
pub const MAX_OPERATORS: usize = 300;
/// Most dereference operators (`.` and `[n]`) in one document path.
pub const MAX_PATH_DEPTH: usize = 32;
/// Largest list index in a document path (`a[2147483647]`): DynamoDB's indexes are 32-bit signed
/// integers; a larger one is a syntax error at the index.
pub const MAX_LIST_INDEX: usize = i32::MAX as usize;
/// Deepest nesting of parentheses, `NOT` and functions in one expression.
pub const MAX_NESTING: usize = 32;

/// Words the grammar itself uses; they are never attribute names.
const GRAMMAR_KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE",
];

pub(crate) struct Parser<'s, 'c, 'a> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    pub kind: ExprKind,
    pub ctx: &'c mut ExprContext<'a>,
    ops: usize,
    depth: usize,
    /// The token span (`(` .. after `)`) of the last parenthesised condition parsed, to find a
    /// group that is nothing but another group (`((a = :v))`: redundant parentheses).
    pub(crate) last_group: Option<(usize, usize)>,
}

impl<'s, 'c, 'a> Parser<'s, 'c, 'a> {
    /// The index of the next token.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Checks emptiness and size, then tokenizes.
    pub fn new(
        src: &'s str,
        kind: ExprKind,
        ctx: &'c mut ExprContext<'a>,
    ) -> Result<Self, ExprError> {
        if src.trim().is_empty() {
            return Err(kind.invalid("The expression can not be empty;"));
        }
        if src.len() > MAX_EXPRESSION_LEN {
            return Err(kind.invalid(format!(
                "Expression size has exceeded the maximum allowed size; expression size: {}",
                src.len()
            )));
        }
        Ok(Parser {
            src,
            toks: tokenize(src),
            pos: 0,
            kind,
            ctx,
            ops: 0,
            depth: 0,
            last_group: None,
        })
    }

    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    pub fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos.saturating_add(n)).map(|t| &t.tok)
    }

    pub fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// Whether the current token is the keyword `kw` (case-insensitive).
    pub fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    pub fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.at_keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, t: &Tok) -> Result<(), ExprError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    pub fn expect_end(&self) -> Result<(), ExprError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// `Syntax error; token: "<tok>", near: "<prev tok next>"` at the current token.
    pub fn syntax_error(&self) -> ExprError {
        self.syntax_error_at(self.pos)
    }

    pub fn syntax_error_at(&self, pos: usize) -> ExprError {
        let span = |from: usize, to: usize| -> &str {
            match (self.toks.get(from), self.toks.get(to)) {
                (Some(a), Some(b)) => self.src.get(a.start..b.end).unwrap_or(""),
                _ => "",
            }
        };
        let (token, near) = match self.toks.get(pos) {
            Some(t) => {
                let last = (pos + 1).min(self.toks.len() - 1);
                (
                    self.src.get(t.start..t.end).unwrap_or(""),
                    span(pos.saturating_sub(1), last),
                )
            }
            None => {
                let n = self.toks.len();
                (
                    "<EOF>",
                    if n == 0 {
                        ""
                    } else {
                        span(n.saturating_sub(2), n - 1)
                    },
                )
            }
        };
        self.kind.invalid(format!(
            "Syntax error; token: \"{token}\", near: \"{near}\""
        ))
    }

    /// Counts one operator or function against [`MAX_OPERATORS`].
    pub fn count_op(&mut self) -> Result<(), ExprError> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(self.kind.invalid(format!(
                "The expression contains too many operators; the maximum allowed is: {MAX_OPERATORS}, operator count: {}",
                self.ops
            )));
        }
        Ok(())
    }

    /// Enters one nesting level (parentheses, `NOT`, function arguments).
    pub fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.kind.invalid(format!(
                "The expression has too many nested levels; the maximum allowed is: {MAX_NESTING}"
            )));
        }
        Ok(())
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Whether the current token can start a document path.
    pub fn at_path_start(&self) -> bool {
        match self.peek() {
            Some(Tok::NamePh(_)) => true,
            Some(Tok::Ident(w)) => !is_grammar_keyword(w),
            _ => false,
        }
    }

    /// One path element name: a bare (non-reserved) word or a `#name` placeholder.
    fn path_name(&mut self) -> Result<String, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Ident(w)) if !is_grammar_keyword(&w) => {
                if is_reserved(&w) {
                    return Err(self.kind.invalid(format!(
                        "Attribute name is a reserved keyword; reserved keyword: {w}"
                    )));
                }
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::NamePh(ph)) => {
                self.check_placeholder_len(&ph)?;
                let name = self.ctx.name(&ph).ok_or_else(|| {
                    self.kind.invalid(format!(
                        "An expression attribute name used in the document path is not defined; attribute name: {ph}"
                    ))
                })?;
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// `name ( '.' name | '[' digits ']' )*`.
    pub fn parse_path(&mut self) -> Result<DocPath, ExprError> {
        let mut elems = vec![PathElem::Name(self.path_name()?)];
        loop {
            if self.eat(&Tok::Dot) {
                elems.push(PathElem::Name(self.path_name()?));
            } else if self.peek() == Some(&Tok::LBracket) {
                self.pos += 1;
                let idx = match self.peek() {
                    Some(Tok::Int(digits)) => digits
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i <= MAX_LIST_INDEX),
                    _ => None,
                };
                let Some(idx) = idx else {
                    return Err(self.syntax_error());
                };
                self.pos += 1;
                self.expect(&Tok::RBracket)?;
                elems.push(PathElem::Index(idx));
            } else {
                break;
            }
            if elems.len() > MAX_PATH_DEPTH + 1 {
                return Err(self.kind.invalid(format!(
                    "The document path has too many nesting levels; nesting levels: {}",
                    elems.len() - 1
                )));
            }
        }
        Ok(DocPath { elems })
    }

    /// Substitutes the `:value` placeholder at the current token.
    pub fn parse_value(&mut self) -> Result<AttributeValue, ExprError> {
        match self.peek().cloned() {
            Some(Tok::ValuePh(ph)) => {
                self.check_placeholder_len(&ph)?;
                let v = self.ctx.value(&ph).ok_or_else(|| {
                    self.kind.invalid(format!(
                        "An expression attribute value used in expression is not defined; attribute value: {ph}"
                    ))
                })?;
                self.pos += 1;
                Ok(v)
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn check_placeholder_len(&self, ph: &str) -> Result<(), ExprError> {
        if ph.len() > MAX_PLACEHOLDER_LEN {
            return Err(self.kind.invalid(format!(
                "Expression attribute name or value is too long; placeholder: {ph}, maximum length: {MAX_PLACEHOLDER_LEN}"
            )));
        }
        Ok(())
    }

    /// Parses a comma-separated function argument list after the name; the caller consumed
    /// the name. Returns after the closing `)`.
    pub fn parse_args<T>(
        &mut self,
        mut arg: impl FnMut(&mut Self) -> Result<T, ExprError>,
    ) -> Result<Vec<T>, ExprError> {
        self.expect(&Tok::LParen)?;
        self.enter()?;
        let mut args = vec![arg(self)?];
        while self.eat(&Tok::Comma) {
            args.push(arg(self)?);
        }
        self.expect(&Tok::RParen)?;
        self.leave();
        Ok(args)
    }
}

pub(crate) fn is_grammar_keyword(w: &str) -> bool {
    GRAMMAR_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

/// `Incorrect number of operands for operator or function; operator or function: f, number of operands: n`.
pub(crate) fn wrong_arity(kind: ExprKind, func: &str, n: usize) -> ExprError {
    kind.invalid(format!(
        "Incorrect number of operands for operator or function; operator or function: {func}, number of operands: {n}"
    ))
}

/// `Incorrect operand type for operator or function; operator or function: f, operand type: T`.
pub(crate) fn wrong_operand_type(kind: ExprKind, func: &str, ty: &str) -> ExprError {
    kind.invalid(format!(
        "Incorrect operand type for operator or function; operator or function: {func}, operand type: {ty}"
    ))
}
