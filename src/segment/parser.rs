//! Recursive descent over the tokens; the grammar is in the module documentation of
//! [`crate::segment`]. Type rules are checked here, where positions are known.

use super::ast::{Duration, Expr, Field, Test, TextField, TimeValue, Value};
use super::calls;
use super::error::{ParseError, Pos};
use super::lexer::{Tok, Token, tokenize};
use super::typing;

/// How deeply parentheses and `not` may nest.
pub const MAX_DEPTH: usize = 64;

/// Parses and type-checks one expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
        depth: 0,
    };
    if parser.peek() == &Tok::Eof {
        return parser
            .fail("expected a condition such as country == \"US\"; the expression is empty");
    }
    let expr = parser.expr()?;
    match parser.peek() {
        Tok::Eof => Ok(expr),
        Tok::RParen => parser.fail("this ')' has no matching '('"),
        other => {
            let found = other.describe();
            parser.fail(format!(
                "expected 'and', 'or' or the end of the expression, found {found}"
            ))
        }
    }
}

/// A literal as written, before the field it is compared with gives it a type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lit {
    Number(f64),
    Text(String),
    Bool(bool),
    /// `30d` without `ago`.
    Duration(Duration),
    /// `30d ago`
    Ago(Duration),
}

pub(super) struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    pub(super) fn peek(&self) -> &Tok {
        &self.tokens[self.at.min(self.tokens.len() - 1)].tok
    }

    pub(super) fn pos(&self) -> Pos {
        self.tokens[self.at.min(self.tokens.len() - 1)].pos
    }

    pub(super) fn peek_ahead(&self, ahead: usize) -> Tok {
        let at = (self.at + ahead).min(self.tokens.len() - 1);
        self.tokens[at].tok.clone()
    }

    pub(super) fn bump(&mut self) -> Token {
        let token = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        if token.tok != Tok::Eof {
            self.at += 1;
        }
        token
    }

    pub(super) fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::new(self.pos(), message))
    }

    /// Consumes a keyword; `and`, `or` and `not` are accepted in any case.
    pub(super) fn keyword(&mut self, word: &str) -> bool {
        let matches = match self.peek() {
            Tok::Ident(name) if ["and", "or", "not"].contains(&word) => {
                name.eq_ignore_ascii_case(word)
            }
            Tok::Ident(name) => name == word,
            _ => false,
        };
        if matches {
            self.bump();
        }
        matches
    }

    pub(super) fn expect(&mut self, tok: &Tok, what: &str) -> Result<Pos, ParseError> {
        if self.peek() == tok {
            Ok(self.bump().pos)
        } else {
            let found = self.peek().describe();
            self.fail(format!("expected {what}, found {found}"))
        }
    }

    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!(
                "the expression nests more than {MAX_DEPTH} levels deep"
            ));
        }
        Ok(())
    }

    pub(super) fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(one_or(terms, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut terms = vec![self.not()?];
        while self.keyword("and") {
            terms.push(self.not()?);
        }
        Ok(one_or(terms, Expr::And))
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if !self.keyword("not") {
            return self.primary();
        }
        self.nest()?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::LParen => self.group(),
            Tok::Ident(word) if word == "true" || word == "false" => self.constant(word == "true"),
            Tok::Str(_) | Tok::Number(_) => self.value_first(),
            Tok::Ident(word) => self.named(&word),
            other => self.fail(format!(
                "expected a condition such as country == \"US\", found {}",
                other.describe()
            )),
        }
    }

    fn group(&mut self) -> Result<Expr, ParseError> {
        let open = self.bump().pos;
        self.nest()?;
        let inner = self.expr()?;
        self.depth -= 1;
        self.expect(&Tok::RParen, &format!("')' to close the '(' at {open}"))?;
        Ok(inner)
    }

    /// `true`, `false`, or a boolean on the left of `in`: `true in attr.flags`.
    fn constant(&mut self, value: bool) -> Result<Expr, ParseError> {
        match self.peek_ahead(1) {
            Tok::Ident(word) if word == "in" || word.eq_ignore_ascii_case("not") => {
                self.value_first()
            }
            _ => {
                self.bump();
                Ok(Expr::Const(value))
            }
        }
    }

    /// A field, or a function call such as `purchases(within: 90d) >= 3`.
    fn named(&mut self, word: &str) -> Result<Expr, ParseError> {
        if let Some(field) = self.field()? {
            return self.test(field);
        }
        if self.peek_ahead(1) == Tok::LParen {
            return calls::call(self, word);
        }
        self.fail(format!(
            "unknown field '{word}': fields are {}, created_at and attr.NAME",
            TextField::ALL.map(TextField::name).join(", ")
        ))
    }

    /// A built-in field or `attr.NAME`, if the next tokens are one.
    pub(super) fn field(&mut self) -> Result<Option<Field>, ParseError> {
        let Tok::Ident(word) = self.peek().clone() else {
            return Ok(None);
        };
        let field = match word.as_str() {
            "attr" => return self.attr().map(Some),
            "created_at" => Field::CreatedAt,
            _ => match TextField::ALL.into_iter().find(|f| f.name() == word) {
                Some(text) => Field::Text(text),
                None => return Ok(None),
            },
        };
        self.bump();
        Ok(Some(field))
    }

    fn attr(&mut self) -> Result<Field, ParseError> {
        self.bump();
        let mut path = Vec::new();
        while path.is_empty() || self.peek() == &Tok::Dot {
            self.expect(
                &Tok::Dot,
                "'.' and an attribute name after 'attr' (attr.age)",
            )?;
            match self.peek().clone() {
                Tok::Ident(name) => {
                    self.bump();
                    path.push(name);
                }
                _ => return self.fail("expected an attribute name after '.' (attr.age)"),
            }
        }
        Ok(Field::Attr(path))
    }

    /// What follows a field: an operator and a value, `in [...]`, `exists`, ….
    fn test(&mut self, field: Field) -> Result<Expr, ParseError> {
        let negated = self.keyword("not");
        let pos = self.pos();
        let test = match self.peek().clone() {
            Tok::Op(op) if !negated => {
                self.bump();
                let (lit, at) = self.literal()?;
                Test::Compare(op, typed(&field, lit, at)?)
            }
            Tok::Ident(word) => self.word_test(&field, &word)?,
            _ => return self.fail(expected_operator(&field)),
        };
        typing::check_test(&field, &test).map_err(|m| ParseError::new(pos, m))?;
        let expr = Expr::Field(field, test);
        Ok(if negated {
            Expr::Not(Box::new(expr))
        } else {
            expr
        })
    }

    fn word_test(&mut self, field: &Field, word: &str) -> Result<Test, ParseError> {
        let test = match word {
            "in" => {
                self.bump();
                Test::In(self.list(field)?)
            }
            "contains" => {
                self.bump();
                let (lit, at) = self.literal()?;
                Test::Contains(typed(field, lit, at)?)
            }
            "starts_with" | "ends_with" => {
                self.bump();
                let text = self.string(word)?;
                if word == "starts_with" {
                    Test::StartsWith(text)
                } else {
                    Test::EndsWith(text)
                }
            }
            "exists" => {
                self.bump();
                Test::Exists
            }
            _ => return self.fail(expected_operator(field)),
        };
        Ok(test)
    }

    fn string(&mut self, after: &str) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(text) => {
                self.bump();
                Ok(text)
            }
            _ => self.fail(format!("expected a string after '{after}'")),
        }
    }

    fn list(&mut self, field: &Field) -> Result<Vec<Value>, ParseError> {
        self.expect(&Tok::LBracket, "a list such as [\"US\", \"CA\"] after 'in'")?;
        let mut values = Vec::new();
        loop {
            let (lit, at) = self.literal()?;
            values.push(typed(field, lit, at)?);
            if values.len() > typing::MAX_LIST {
                return self.fail(format!("a list holds at most {} values", typing::MAX_LIST));
            }
            if self.peek() != &Tok::Comma {
                break;
            }
            self.bump();
        }
        self.expect(&Tok::RBracket, "',' or ']' in the list")?;
        Ok(values)
    }

    /// A value: string, number, true/false, or a duration with or without `ago`.
    pub(super) fn literal(&mut self) -> Result<(Lit, Pos), ParseError> {
        let token = self.bump();
        let lit = match token.tok {
            Tok::Str(s) => Lit::Text(s),
            Tok::Number(n) => Lit::Number(n),
            Tok::Ident(w) if w == "true" || w == "false" => Lit::Bool(w == "true"),
            Tok::Duration(d) if self.keyword("ago") => Lit::Ago(d),
            Tok::Duration(d) => Lit::Duration(d),
            other => {
                let message = format!(
                    "expected a value (a string, a number, true, false or a time such as 30d ago), found {}",
                    other.describe()
                );
                return Err(ParseError::new(token.pos, message));
            }
        };
        Ok((lit, token.pos))
    }

    /// `"running" in attr.interests`, `30 <= attr.age`: the value comes first.
    fn value_first(&mut self) -> Result<Expr, ParseError> {
        let (lit, at) = self.literal()?;
        let negated = self.keyword("not");
        let op = match self.peek().clone() {
            Tok::Ident(word) if word == "in" => None,
            Tok::Op(op) if !negated => Some(op.flipped()),
            _ => return self.fail("expected 'in' or an operator such as >= after the value"),
        };
        self.bump();
        let pos = self.pos();
        let Some(field) = self.field()? else {
            return self.fail("expected a field such as attr.interests or country");
        };
        let value = typed(&field, lit, at)?;
        let test = op.map_or(Test::Contains(value.clone()), |op| Test::Compare(op, value));
        typing::check_test(&field, &test).map_err(|m| ParseError::new(pos, m))?;
        let expr = Expr::Field(field, test);
        Ok(if negated {
            Expr::Not(Box::new(expr))
        } else {
            expr
        })
    }
}

fn one_or(mut terms: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        join(terms)
    }
}

fn expected_operator(field: &Field) -> String {
    format!(
        "expected an operator after '{}': ==, !=, <, <=, >, >=, in, contains, starts_with, ends_with or exists",
        typing::field_name(field)
    )
}

/// Gives a literal the type its field needs: a string compared with `created_at` is
/// a date; `30d` alone is only a value for `last()`.
fn typed(field: &Field, lit: Lit, at: Pos) -> Result<Value, ParseError> {
    let value = literal_value(field, lit, at)?;
    typing::check_value_for(field, &value).map_err(|m| ParseError::new(at, m))?;
    Ok(value)
}

fn literal_value(field: &Field, lit: Lit, at: Pos) -> Result<Value, ParseError> {
    let fail = |m: &str| Err(ParseError::new(at, m));
    match lit {
        Lit::Number(n) => Ok(Value::Number(n)),
        Lit::Bool(b) => Ok(Value::Bool(b)),
        Lit::Text(s) if *field == Field::CreatedAt => match parse_date(&s) {
            Some(t) => Ok(Value::Time(TimeValue::At(t))),
            None => fail(
                "expected a date such as \"2026-01-31\", an RFC 3339 time or a time such as 30d ago",
            ),
        },
        Lit::Text(s) => Ok(Value::Text(s)),
        Lit::Ago(d) => Ok(Value::Time(TimeValue::Ago(d))),
        Lit::Duration(d) => fail(&format!(
            "expected 'ago' after the duration: a point in time is written {}{} ago",
            d.amount,
            d.unit.suffix()
        )),
    }
}

/// `2026-01-31` (midnight UTC) or an RFC 3339 time, as unix seconds.
pub fn parse_date(text: &str) -> Option<i64> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}
