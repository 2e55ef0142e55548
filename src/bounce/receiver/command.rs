//! One SMTP command line, parsed (RFC 5321 §4.1). Paths are kept as written between
//! the angle brackets; parameters after them only matter for SIZE.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    Ehlo(String),
    Helo(String),
    /// The reverse path (empty for the null sender of bounces) and the SIZE declared.
    Mail {
        from: String,
        size: Option<u64>,
    },
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    /// A known verb with arguments that do not parse.
    Syntax(&'static str),
    Unknown,
}

/// Parses one line, without its line ending.
pub(super) fn parse(line: &str) -> Command {
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, rest.trim()),
        None => (line.trim(), ""),
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" if !rest.is_empty() => Command::Ehlo(rest.to_string()),
        "HELO" if !rest.is_empty() => Command::Helo(rest.to_string()),
        "EHLO" | "HELO" => Command::Syntax("a domain or address literal is required"),
        "MAIL" => mail(rest),
        "RCPT" => match path_after(rest, "TO:") {
            Some((path, _)) if !path.is_empty() => Command::Rcpt(path),
            _ => Command::Syntax("RCPT TO:<address> expected"),
        },
        "DATA" => Command::Data,
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "VRFY" => Command::Vrfy,
        _ => Command::Unknown,
    }
}

fn mail(rest: &str) -> Command {
    let Some((from, params)) = path_after(rest, "FROM:") else {
        return Command::Syntax("MAIL FROM:<address> expected");
    };
    let mut size = None;
    for param in params.split_whitespace() {
        if let Some((name, value)) = param.split_once('=')
            && name.eq_ignore_ascii_case("SIZE")
        {
            match value.parse() {
                Ok(n) => size = Some(n),
                Err(_) => return Command::Syntax("SIZE=number expected"),
            }
        }
    }
    Command::Mail { from, size }
}

/// `FROM:<a@b> SIZE=1` → ("a@b", "SIZE=1"); the prefix in any case, spaces tolerated
/// after the colon.
fn path_after<'a>(rest: &'a str, prefix: &str) -> Option<(String, &'a str)> {
    let head = rest.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let after = rest[prefix.len()..].trim_start();
    let inner = after.strip_prefix('<')?;
    let end = inner.find('>')?;
    let path = &inner[..end];
    // A source route (`@a,@b:user@c`) names the mailbox after the colon.
    let path = path.rsplit_once(':').map_or(path, |(_, mailbox)| mailbox);
    Some((path.to_string(), inner[end + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_in_any_case() {
        assert_eq!(
            parse("ehlo mx.example.net"),
            Command::Ehlo("mx.example.net".into())
        );
        assert_eq!(
            parse("MAIL FROM:<> SIZE=2048 BODY=8BITMIME"),
            Command::Mail {
                from: String::new(),
                size: Some(2048)
            }
        );
        assert_eq!(
            parse("mail from: <a@b.example>"),
            Command::Mail {
                from: "a@b.example".into(),
                size: None
            }
        );
        assert_eq!(
            parse("RCPT TO:<@relay.example:bounces+x@b.example>"),
            Command::Rcpt("bounces+x@b.example".into())
        );
        assert_eq!(parse("data"), Command::Data);
        assert_eq!(parse("QUIT"), Command::Quit);
    }

    #[test]
    fn malformed_commands_say_what_is_wrong() {
        assert!(matches!(parse("MAIL FROM:a@b"), Command::Syntax(_)));
        assert!(matches!(parse("RCPT TO:<>"), Command::Syntax(_)));
        assert!(matches!(
            parse("MAIL FROM:<> SIZE=lots"),
            Command::Syntax(_)
        ));
        assert!(matches!(parse("EHLO"), Command::Syntax(_)));
        assert_eq!(parse("STARTTLS"), Command::Unknown);
        assert_eq!(parse(""), Command::Unknown);
    }
}
