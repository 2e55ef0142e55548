//! Splits an expression into tokens. Anything that is not a token of the language,
//! such as `;`, `=` or `'`, stops here with its position.

use super::ast::{Duration, MAX_DURATION_SECONDS, Order, Unit};
use super::error::{ParseError, Pos};

/// The longest expression accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Number(f64),
    Duration(Duration),
    Op(Order),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Dot,
    Eof,
}

impl Tok {
    /// How an error message names the token.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("'{name}'"),
            Tok::Str(_) => "a string".into(),
            Tok::Number(_) => "a number".into(),
            Tok::Duration(_) => "a duration".into(),
            Tok::Op(op) => format!("'{}'", op.symbol()),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    if text.len() > MAX_LEN {
        return Err(ParseError::new(
            Pos { line: 1, col: 1 },
            format!("the expression is longer than {MAX_LEN} bytes"),
        ));
    }
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        at: 0,
        pos: Pos { line: 1, col: 1 },
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_blank();
        let pos = lexer.pos;
        let tok = lexer.token()?;
        let end = tok == Tok::Eof;
        tokens.push(Token { tok, pos });
        if end {
            return Ok(tokens);
        }
    }
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    pos: Pos,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn error<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::new(pos, message))
    }

    /// White space and `# comments` up to the end of the line.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> Result<Tok, ParseError> {
        let pos = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Tok::Eof);
        };
        if c.is_ascii_alphabetic() || c == '_' {
            return Ok(Tok::Ident(self.word()));
        }
        if c.is_ascii_digit() || (c == '-' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            return self.number();
        }
        if c == '"' {
            return self.string();
        }
        self.bump();
        let single = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '.' => Tok::Dot,
            '=' | '!' | '<' | '>' => return self.operator(c, pos),
            '\'' => return self.error(pos, "strings are written in double quotes: \"text\""),
            other => return self.error(pos, format!("unexpected character {other:?}")),
        };
        Ok(single)
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            word.push(c);
            self.bump();
        }
        word
    }

    fn operator(&mut self, first: char, pos: Pos) -> Result<Tok, ParseError> {
        let eq = self.peek() == Some('=');
        let op = match (first, eq) {
            ('=', true) => Order::Eq,
            ('!', true) => Order::Ne,
            ('<', true) => Order::Le,
            ('>', true) => Order::Ge,
            ('<', false) => return Ok(Tok::Op(Order::Lt)),
            ('>', false) => return Ok(Tok::Op(Order::Gt)),
            ('=', false) => {
                return self.error(
                    pos,
                    "expected '==' to compare ('=' alone is not an operator)",
                );
            }
            _ => {
                return self.error(
                    pos,
                    "expected '!=' ('!' alone is not an operator; use 'not')",
                );
            }
        };
        self.bump();
        Ok(Tok::Op(op))
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let pos = self.pos;
        let mut text = String::new();
        if self.peek() == Some('-') {
            text.push('-');
            self.bump();
        }
        self.digits(&mut text);
        let integral =
            !(self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()));
        if !integral {
            text.push('.');
            self.bump();
            self.digits(&mut text);
        }
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            return self.duration(&text, integral, pos);
        }
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Tok::Number(n)),
            _ => self.error(pos, "the number is too large"),
        }
    }

    fn digits(&mut self, text: &mut String) {
        while let Some(d) = self.peek().filter(char::is_ascii_digit) {
            text.push(d);
            self.bump();
        }
    }

    fn duration(&mut self, amount: &str, integral: bool, pos: Pos) -> Result<Tok, ParseError> {
        let unit_pos = self.pos;
        let suffix = self.word();
        let Some(unit) = Unit::from_suffix(&suffix) else {
            let hint = if suffix == "m" {
                "'m' is ambiguous: write minutes as 90min and months as 6mo"
            } else {
                "durations end in min, h, d, w, mo or y (30d)"
            };
            return self.error(
                unit_pos,
                format!("unknown duration unit '{suffix}': {hint}"),
            );
        };
        if !integral || amount.starts_with('-') {
            return self.error(
                pos,
                "a duration is a whole, positive number followed by a unit (30d)",
            );
        }
        let count: Option<u32> = amount.parse().ok();
        match count.map(|n| Duration::new(n, unit)) {
            Some(d) if d.seconds() <= MAX_DURATION_SECONDS => Ok(Tok::Duration(d)),
            _ => self.error(pos, "a duration may be at most 200 years"),
        }
    }

    fn string(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.bump();
        let mut text = String::new();
        loop {
            let pos = self.pos;
            match self.bump() {
                None => return self.error(start, "this string has no closing '\"'"),
                Some('"') => return Ok(Tok::Str(text)),
                Some('\\') => text.push(self.escape(pos)?),
                Some(c) if c.is_control() && c != '\t' => {
                    return self.error(
                        pos,
                        "a string may not hold a line break or control character (write \\n)",
                    );
                }
                Some(c) => text.push(c),
            }
        }
    }

    fn escape(&mut self, pos: Pos) -> Result<char, ParseError> {
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some('u') => self.unicode(pos),
            _ => self.error(
                pos,
                "unknown escape: use \\\", \\\\, \\n, \\t, \\r or \\u{…}",
            ),
        }
    }

    fn unicode(&mut self, pos: Pos) -> Result<char, ParseError> {
        let bad = |lexer: &Self| lexer.error(pos, "expected a character code such as \\u{e9}");
        if self.bump() != Some('{') {
            return bad(self);
        }
        let mut hex = String::new();
        while let Some(c) = self.peek().filter(char::is_ascii_hexdigit) {
            hex.push(c);
            self.bump();
        }
        if self.bump() != Some('}') || hex.is_empty() || hex.len() > 6 {
            return bad(self);
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(c) if c != '\0' => Ok(c),
            _ => bad(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_durations_numbers_and_operators() {
        assert_eq!(
            toks("spent(within: 30d) >= -2.5"),
            vec![
                Tok::Ident("spent".into()),
                Tok::LParen,
                Tok::Ident("within".into()),
                Tok::Colon,
                Tok::Duration(Duration::new(30, Unit::Day)),
                Tok::RParen,
                Tok::Op(Order::Ge),
                Tok::Number(-2.5),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let tokens = tokenize("a and\n  \"é\" in b").unwrap();
        assert_eq!(tokens[2].pos, Pos { line: 2, col: 3 });
        assert_eq!(tokens[3].pos, Pos { line: 2, col: 7 });
    }

    #[test]
    fn refuses_sql_punctuation() {
        let err = tokenize("1=1; DROP TABLE recipients").unwrap_err();
        assert_eq!(err.pos, Pos { line: 1, col: 2 });
        assert!(tokenize("x;").unwrap_err().message.contains("';'"));
        assert!(tokenize("'US'").is_err());
    }

    #[test]
    fn refuses_ambiguous_minutes() {
        let err = tokenize("90m").unwrap_err();
        assert!(err.message.contains("ambiguous"), "{err}");
    }
}
