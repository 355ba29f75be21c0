//! The recursive-descent parser: token cursor, limits and the statement grammar. Expressions
//! are in `expr.rs`, literals and paths in `literal.rs`.

use crate::ast::{Delete, Insert, OrderBy, Projection, Returning, Select, Statement, Update};
use crate::ast::{Expr, UpdateAction};
use crate::error::ParseError;
use crate::lexer::{Tok, Token, syntax_error, tokenize};
use crate::limits::{MAX_NESTING, MAX_STATEMENT_LEN};

/// Words of the grammar. They are never bare identifiers: an attribute or table with one of
/// these names must be double-quoted (`"value"`).
const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "ASC",
    "BETWEEN",
    "BY",
    "DELETE",
    "DESC",
    "EXISTS",
    "FALSE",
    "FROM",
    "IN",
    "INSERT",
    "INTO",
    "IS",
    "MISSING",
    "NOT",
    "NULL",
    "OR",
    "ORDER",
    "REMOVE",
    "RETURNING",
    "SELECT",
    "SET",
    "TRUE",
    "UPDATE",
    "VALUE",
    "VALUES",
    "WHERE",
];

/// Whether `word` is a keyword (case-insensitive).
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Parses one statement. See [`crate::parse`].
pub(crate) fn parse_statement(src: &str) -> Result<Statement, ParseError> {
    // Bytes bound characters from above (and from below by a quarter), so the count is cheap.
    if src.len() > MAX_STATEMENT_LEN {
        let len = src.chars().take(MAX_STATEMENT_LEN + 1).count();
        if len > MAX_STATEMENT_LEN {
            return Err(ParseError::TooLong {
                len: src.chars().count(),
            });
        }
    }
    if src.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let mut p = Parser {
        src,
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
        params: 0,
    };
    let stmt = p.statement()?;
    if !p.at_end() {
        return Err(p.unexpected("end of statement"));
    }
    Ok(stmt)
}

pub(crate) struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    /// `?` seen so far: the next one's number.
    pub(crate) params: usize,
}

impl Parser<'_> {
    pub(crate) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    pub(crate) fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos.saturating_add(n)).map(|t| &t.tok)
    }

    pub(crate) fn bump(&mut self) {
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub(crate) fn at_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    pub(crate) fn eat_word(&mut self, kw: &str) -> bool {
        let yes = self.at_word(kw);
        if yes {
            self.pos += 1;
        }
        yes
    }

    pub(crate) fn eat(&mut self, t: &Tok) -> bool {
        let yes = self.peek() == Some(t);
        if yes {
            self.pos += 1;
        }
        yes
    }

    /// Consumes `t`, or fails with "unexpected ...; expected `what`".
    pub(crate) fn expect(&mut self, t: &Tok, what: &str) -> Result<(), ParseError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    pub(crate) fn expect_word(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.eat_word(kw) {
            Ok(())
        } else {
            Err(self.unexpected(kw))
        }
    }

    /// Byte offset of the current token (the end of the text past the last one).
    pub(crate) fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.src.len(), |t| t.start)
    }

    /// A syntax error at the current token.
    pub(crate) fn error(&self, detail: impl Into<String>) -> ParseError {
        syntax_error(self.src, self.offset(), detail)
    }

    /// A syntax error at byte offset `at`.
    pub(crate) fn error_at(&self, at: usize, detail: impl Into<String>) -> ParseError {
        syntax_error(self.src, at, detail)
    }

    /// `unexpected <token>; expected <what>` at the current token (a long token shortened).
    pub(crate) fn unexpected(&self, what: &str) -> ParseError {
        match self.peek() {
            Some(t) => {
                let mut shown = t.describe();
                if let Some((cut, _)) = shown.char_indices().nth(40) {
                    shown.truncate(cut);
                    shown.push_str("...");
                }
                self.error(format!("unexpected '{shown}'; expected {what}"))
            }
            None => self.error(format!("unexpected end of statement; expected {what}")),
        }
    }

    /// Enters one nesting level; fails past [`MAX_NESTING`]. Call before recursing.
    pub(crate) fn enter(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_NESTING {
            let (line, column) = crate::lexer::line_col(self.src, self.offset());
            return Err(ParseError::TooDeep { line, column });
        }
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        if self.eat_word("SELECT") {
            Ok(Statement::Select(self.select_rest()?))
        } else if self.eat_word("EXISTS") {
            self.expect(&Tok::LParen, "'('")?;
            self.expect_word("SELECT")?;
            let select = self.select_rest()?;
            self.expect(&Tok::RParen, "')'")?;
            Ok(Statement::Exists(select))
        } else if self.eat_word("NOT") {
            self.expect_word("EXISTS")?;
            self.expect(&Tok::LParen, "'('")?;
            self.expect_word("SELECT")?;
            let select = self.select_rest()?;
            self.expect(&Tok::RParen, "')'")?;
            Ok(Statement::NotExists(select))
        } else if self.eat_word("INSERT") {
            self.insert_rest().map(Statement::Insert)
        } else if self.eat_word("UPDATE") {
            self.update_rest().map(Statement::Update)
        } else if self.eat_word("DELETE") {
            self.delete_rest().map(Statement::Delete)
        } else {
            Err(self.unexpected("SELECT, INSERT, UPDATE, DELETE or EXISTS"))
        }
    }

    /// A table name: a double-quoted identifier or a bare word that is not a keyword.
    /// Returns the name and whether it was quoted.
    fn table_name(&mut self) -> Result<(String, bool), ParseError> {
        match self.peek() {
            Some(Tok::Quoted(q)) if !q.is_empty() => {
                let q = q.clone();
                self.bump();
                Ok((q, true))
            }
            Some(Tok::Word(w)) if !is_keyword(w) => {
                let w = w.clone();
                self.bump();
                Ok((w, false))
            }
            _ => Err(self.unexpected("a table name")),
        }
    }

    /// After `SELECT`: `projection FROM table[.index] [WHERE cond] [ORDER BY ...]`.
    fn select_rest(&mut self) -> Result<Select, ParseError> {
        let projection = if self.at_word("FROM") {
            return Err(self.unexpected("'*' or attribute names"));
        } else if self.eat(&Tok::Star) {
            Projection::All
        } else {
            let mut paths = vec![self.path()?];
            while self.eat(&Tok::Comma) {
                paths.push(self.path()?);
            }
            Projection::Paths(paths)
        };
        self.expect_word("FROM")?;
        let at = self.offset();
        let (table, quoted) = self.table_name()?;
        let mut index = None;
        if self.eat(&Tok::Dot) {
            match self.peek() {
                Some(Tok::Quoted(q)) if quoted && !q.is_empty() => {
                    index = Some(q.clone());
                    self.bump();
                }
                _ => {
                    return Err(self.error_at(
                        at,
                        "a table and index must be written \"table\".\"index\", both double-quoted",
                    ));
                }
            }
        }
        let where_clause = if self.eat_word("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order_by = Vec::new();
        if self.eat_word("ORDER") {
            self.expect_word("BY")?;
            loop {
                let path = self.path()?;
                let descending = if self.eat_word("DESC") {
                    true
                } else {
                    self.eat_word("ASC");
                    false
                };
                order_by.push(OrderBy { path, descending });
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        Ok(Select {
            projection,
            table,
            index,
            where_clause,
            order_by,
        })
    }

    /// After `INSERT`: `INTO table VALUE {tuple}`.
    fn insert_rest(&mut self) -> Result<Insert, ParseError> {
        self.expect_word("INTO")?;
        let (table, _) = self.table_name()?;
        if !self.eat_word("VALUE") {
            return Err(self.unexpected("VALUE (one item per INSERT)"));
        }
        if self.peek() != Some(&Tok::LBrace) {
            return Err(self.unexpected("an item written as a tuple '{...}'"));
        }
        let item = self.tuple()?;
        Ok(Insert { table, item })
    }

    /// After `UPDATE`: `table (SET path = value, ... | REMOVE path, ...)+ WHERE cond [RETURNING]`.
    fn update_rest(&mut self) -> Result<Update, ParseError> {
        let (table, _) = self.table_name()?;
        let mut actions = Vec::new();
        loop {
            if self.eat_word("SET") {
                loop {
                    let path = self.path()?;
                    self.expect(&Tok::Eq, "'='")?;
                    let value = self.operand()?;
                    actions.push(UpdateAction::Set { path, value });
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
            } else if self.eat_word("REMOVE") {
                loop {
                    actions.push(UpdateAction::Remove(self.path()?));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
            } else if actions.is_empty() {
                return Err(self.unexpected("SET or REMOVE"));
            } else {
                break;
            }
        }
        let where_clause = self.required_where()?;
        let returning = self.returning()?;
        Ok(Update {
            table,
            actions,
            where_clause,
            returning,
        })
    }

    /// After `DELETE`: `FROM table WHERE cond [RETURNING ALL OLD *]`.
    fn delete_rest(&mut self) -> Result<Delete, ParseError> {
        self.expect_word("FROM")?;
        let (table, _) = self.table_name()?;
        let where_clause = self.required_where()?;
        let at = self.offset();
        let returning = self.returning()?;
        if returning.is_some_and(|r| r != Returning::AllOld) {
            return Err(self.error_at(at, "DELETE supports only RETURNING ALL OLD *"));
        }
        Ok(Delete {
            table,
            where_clause,
            returning,
        })
    }

    fn required_where(&mut self) -> Result<Expr, ParseError> {
        if !self.eat_word("WHERE") {
            return Err(self.unexpected("WHERE (the statement must name one item)"));
        }
        self.condition()
    }

    /// `[RETURNING (ALL|MODIFIED) (OLD|NEW) *]`.
    fn returning(&mut self) -> Result<Option<Returning>, ParseError> {
        if !self.eat_word("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_word("ALL") {
            true
        } else if self.eat_word("MODIFIED") {
            false
        } else {
            return Err(self.unexpected("ALL or MODIFIED"));
        };
        let old = if self.eat_word("OLD") {
            true
        } else if self.eat_word("NEW") {
            false
        } else {
            return Err(self.unexpected("OLD or NEW"));
        };
        self.expect(&Tok::Star, "'*'")?;
        Ok(Some(match (all, old) {
            (true, true) => Returning::AllOld,
            (false, true) => Returning::ModifiedOld,
            (true, false) => Returning::AllNew,
            (false, false) => Returning::ModifiedNew,
        }))
    }
}
