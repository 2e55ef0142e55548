//! IMAP's text: commands as they go on the wire (quoted strings, literals, mailbox
//! names in modified UTF-7) and the few responses the client reads.

use base64::Engine;

use super::super::Fetched;

/// A command argument.
pub(super) enum Arg<'a> {
    /// Sent as written: numbers, sets, `BODY.PEEK[]`, flag lists.
    Atom(&'a str),
    /// A string: quoted, or a literal when quoting cannot carry it.
    Str(&'a str),
    /// A mailbox name: modified UTF-7 (RFC 3501 5.1.3), quoted.
    Mailbox(&'a str),
}

/// A command in pieces: each text before a literal with that literal (the server must
/// say `+` between them), then the text that ends the command.
pub(super) type CommandLine = (Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

pub(super) fn command_line(tag: &str, name: &str, args: &[Arg<'_>]) -> Result<CommandLine, String> {
    let mut with_literals = Vec::new();
    let mut current = format!("{tag} {name}").into_bytes();
    for arg in args {
        current.push(b' ');
        match arg {
            Arg::Atom(atom) => current.extend_from_slice(atom.as_bytes()),
            Arg::Mailbox(name) => current.extend_from_slice(&quoted(&modified_utf7(name))),
            Arg::Str(text) if quotable(text) => current.extend_from_slice(&quoted(text)),
            Arg::Str(text) if text.contains('\0') => {
                return Err("a NUL character cannot be sent".into());
            }
            Arg::Str(text) => {
                current.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
                with_literals.push((std::mem::take(&mut current), text.as_bytes().to_vec()));
            }
        }
    }
    current.extend_from_slice(b"\r\n");
    Ok((with_literals, current))
}

/// 7-bit text without CR, LF or NUL fits in a quoted string.
fn quotable(text: &str) -> bool {
    text.bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
}

fn quoted(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    for b in text.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// RFC 3501 5.1.3: printable ASCII as itself (`&` as `&-`), anything else as UTF-16
/// in base64 with `,` for `/`, between `&` and `-`.
pub(super) fn modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut wide: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf16(&mut out, &mut wide);
            match c {
                '&' => out.push_str("&-"),
                _ => out.push(c),
            }
        } else {
            wide.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        }
    }
    flush_utf16(&mut out, &mut wide);
    out
}

fn flush_utf16(out: &mut String, wide: &mut Vec<u16>) {
    if wide.is_empty() {
        return;
    }
    let bytes: Vec<u8> = wide.drain(..).flat_map(u16::to_be_bytes).collect();
    let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    out.push('&');
    out.push_str(&encoded.replace('/', ","));
    out.push('-');
}

/// A UID set with runs as ranges: `3:5,9`.
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for uid in sorted {
        match ranges.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(uid) => *end = uid,
            _ => ranges.push((uid, uid)),
        }
    }
    let texts: Vec<String> = ranges
        .into_iter()
        .map(|(first, last)| match first == last {
            true => first.to_string(),
            false => format!("{first}:{last}"),
        })
        .collect();
    texts.join(",")
}

/// Whether a status text carries the response code `[CODE]`.
pub(super) fn has_code(answer: &[u8], code: &str) -> bool {
    let upper = String::from_utf8_lossy(answer).to_ascii_uppercase();
    upper.contains(&format!("[{code}]")) || upper.contains(&format!("[{code} "))
}

/// The list of a `[CAPABILITY …]` response code, upper-case.
pub(super) fn code_capabilities(text: &[u8]) -> Option<Vec<String>> {
    let upper = String::from_utf8_lossy(text).to_ascii_uppercase();
    let start = upper.find("[CAPABILITY ")? + "[CAPABILITY ".len();
    let end = start + upper[start..].find(']')?;
    Some(
        upper[start..end]
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

pub(super) enum Literal {
    Bytes(Vec<u8>),
    /// Over what the client keeps: read and dropped.
    TooLarge(u64),
}

/// One untagged response: its lines, and the literal that followed each but the last.
pub(super) struct Untagged {
    lines: Vec<Vec<u8>>,
    literals: Vec<Literal>,
}

impl Untagged {
    pub fn new(line: Vec<u8>) -> Untagged {
        Untagged {
            lines: vec![line],
            literals: Vec::new(),
        }
    }

    /// The length of the literal the last line announces (`{42}` at its end).
    pub fn announced_literal(&self) -> Option<u64> {
        let last = self.lines.last()?;
        literal_announced(last)
    }

    pub fn push(&mut self, literal: Literal, next_line: Vec<u8>) {
        self.literals.push(literal);
        self.lines.push(next_line);
    }

    /// The lines, literals left out.
    pub fn text(&self) -> Vec<u8> {
        self.lines.concat()
    }

    pub fn text_len(&self) -> usize {
        self.lines.iter().map(Vec::len).sum()
    }

    pub fn is_bye(&self) -> bool {
        self.upper().starts_with("* BYE")
    }

    /// The UIDs of a `* SEARCH` response.
    pub fn search(&self) -> Option<Vec<u32>> {
        let upper = self.upper();
        let rest = upper.strip_prefix("* SEARCH")?;
        Some(
            rest.split_ascii_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect(),
        )
    }

    /// The list of a `* CAPABILITY` response.
    pub fn capabilities(&self) -> Option<Vec<String>> {
        let upper = self.upper();
        let rest = upper.strip_prefix("* CAPABILITY ")?;
        Some(rest.split_ascii_whitespace().map(str::to_string).collect())
    }

    pub fn fetched_uid(&self) -> Option<u32> {
        fetch_item(&self.fetch_items()?, "UID")
    }

    /// UID and RFC822.SIZE of a `* n FETCH` response holding both.
    pub fn uid_and_size(&self) -> Option<(u32, u64)> {
        let items = self.fetch_items()?;
        Some((
            fetch_item(&items, "UID")?,
            fetch_item(&items, "RFC822.SIZE")?,
        ))
    }

    /// The literal announced right after `BODY[]`.
    pub fn into_body(self) -> Option<Fetched> {
        let position = self
            .lines
            .iter()
            .zip(&self.literals)
            .position(|(line, _)| {
                let end = line.iter().rposition(|&b| b == b'{').unwrap_or(line.len());
                line[..end]
                    .trim_ascii_end()
                    .to_ascii_uppercase()
                    .ends_with(b"BODY[]")
            })?;
        Some(match self.literals.into_iter().nth(position)? {
            Literal::Bytes(bytes) => Fetched::Message(bytes),
            Literal::TooLarge(len) => Fetched::TooLarge(len),
        })
    }

    fn upper(&self) -> String {
        String::from_utf8_lossy(&self.text()).to_ascii_uppercase()
    }

    /// The words of a `* n FETCH (…)` response, parentheses dropped.
    fn fetch_items(&self) -> Option<Vec<String>> {
        let upper = self.upper();
        let mut words = upper.strip_prefix("* ")?.splitn(3, ' ');
        words.next()?.parse::<u32>().ok()?;
        if words.next()? != "FETCH" {
            return None;
        }
        let items = words.next()?;
        Some(
            items
                .split(|c: char| c == '(' || c == ')' || c.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
}

fn fetch_item<T: std::str::FromStr>(items: &[String], name: &str) -> Option<T> {
    items
        .windows(2)
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].parse().ok())
}

fn literal_announced(line: &[u8]) -> Option<u64> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_escaped_or_sent_as_literals() {
        let (literals, last) = command_line(
            "m1",
            "LOGIN",
            &[Arg::Str("bob \"the\" \\user"), Arg::Str("pässwörd")],
        )
        .unwrap();
        assert_eq!(literals.len(), 1);
        assert_eq!(
            literals[0].0,
            b"m1 LOGIN \"bob \\\"the\\\" \\\\user\" {10}\r\n"
        );
        assert_eq!(literals[0].1, "pässwörd".as_bytes());
        assert_eq!(last, b"\r\n");
        let (none, line) = command_line("m2", "SELECT", &[Arg::Mailbox("INBOX")]).unwrap();
        assert!(none.is_empty());
        assert_eq!(line, b"m2 SELECT \"INBOX\"\r\n");
        assert!(command_line("m3", "LOGIN", &[Arg::Str("a\0b")]).is_err());
    }

    #[test]
    fn mailbox_names_in_modified_utf7() {
        assert_eq!(modified_utf7("Processed"), "Processed");
        assert_eq!(modified_utf7("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(modified_utf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(
            modified_utf7("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[9, 3, 4, 5, 11, 12]), "3:5,9,11:12");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[u32::MAX, 1]), "1,4294967295");
    }

    #[test]
    fn reads_search_fetch_and_capability_responses() {
        assert_eq!(
            Untagged::new(b"* SEARCH 4 2 17".to_vec()).search(),
            Some(vec![4, 2, 17])
        );
        assert_eq!(Untagged::new(b"* SEARCH".to_vec()).search(), Some(vec![]));
        let sized = Untagged::new(b"* 3 FETCH (RFC822.SIZE 1234 UID 7)".to_vec());
        assert_eq!(sized.uid_and_size(), Some((7, 1234)));
        assert_eq!(Untagged::new(b"* 3 EXISTS".to_vec()).uid_and_size(), None);
        let caps = Untagged::new(b"* CAPABILITY IMAP4rev1 move UIDPLUS".to_vec());
        assert_eq!(
            caps.capabilities().unwrap(),
            ["IMAP4REV1", "MOVE", "UIDPLUS"]
        );
        let greeting = b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready";
        assert_eq!(
            code_capabilities(greeting).unwrap(),
            ["IMAP4REV1", "LITERAL+", "AUTH=PLAIN"]
        );
        assert!(has_code(
            b"[TRYCREATE] Mailbox doesn't exist: Done",
            "TRYCREATE"
        ));
        assert!(!has_code(b"Mailbox doesn't exist", "TRYCREATE"));
    }

    #[test]
    fn the_body_is_the_literal_after_body() {
        let mut fetched = Untagged::new(b"* 1 FETCH (UID 12 BODY[] {5}".to_vec());
        assert_eq!(fetched.announced_literal(), Some(5));
        fetched.push(
            Literal::Bytes(b"Hi\r\n.".to_vec()),
            b" FLAGS (\\Seen))".to_vec(),
        );
        assert_eq!(fetched.announced_literal(), None);
        assert_eq!(fetched.fetched_uid(), Some(12));
        assert!(matches!(fetched.into_body(), Some(Fetched::Message(m)) if m == b"Hi\r\n."));
        let mut other = Untagged::new(b"* 1 FETCH (UID 12 BODY[HEADER] {5}".to_vec());
        other.push(Literal::Bytes(b"x".to_vec()), b")".to_vec());
        assert!(other.into_body().is_none());
        assert_eq!(literal_announced(b"* 1 FETCH (BODY[] {x}"), None);
        assert_eq!(literal_announced(b"{}"), None);
    }
}
