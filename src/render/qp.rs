//! Quoted-printable body encoding (RFC 2045 §6.7), written for speed on mostly-ASCII
//! HTML: one pass, output CRLF line breaks, lines of at most 76 characters. A `.` that
//! starts a line is encoded (`=2E`) so that no line of the encoded body can be a lone
//! dot, whatever the transport does about dot-stuffing.

const HEX: &[u8; 16] = b"0123456789ABCDEF";
/// Characters of content per line; a soft break adds its `=`, staying within 76.
const LINE: usize = 75;

pub(crate) fn encode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16 + 64);
    let mut column = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\r' || byte == b'\n' {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += if byte == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            continue;
        }
        if column == LINE {
            soft_break(&mut out, &mut column);
        }
        if is_literal(bytes, i, column) {
            let run = literal_run(bytes, i, LINE - column);
            out.extend_from_slice(&bytes[i..i + run]);
            column += run;
            i += run;
        } else {
            if column + 3 > LINE {
                soft_break(&mut out, &mut column);
            }
            out.extend_from_slice(&[
                b'=',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
            column += 3;
            i += 1;
        }
    }
    out
}

fn soft_break(out: &mut Vec<u8>, column: &mut usize) {
    out.extend_from_slice(b"=\r\n");
    *column = 0;
}

/// Printable ASCII but `=`, plus space and tab: the bytes a run may hold.
const RUN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 33;
    while b <= 126 {
        table[b] = true;
        b += 1;
    }
    table[b'=' as usize] = false;
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    table
};

/// Length of the run of literal bytes from `start` (whose first byte is literal), at
/// most `room`; the run never starts a line, so a `.` in it is fine.
fn literal_run(bytes: &[u8], start: usize, room: usize) -> usize {
    let end = bytes.len().min(start + room);
    let mut j = start + 1;
    while j + 16 <= end && all_plain(&bytes[j..j + 16]) {
        j += 16;
    }
    while j < end && RUN[usize::from(bytes[j])] {
        j += 1;
    }
    let ends_line = j == bytes.len() || matches!(bytes[j], b'\r' | b'\n');
    if ends_line && j > start + 1 && matches!(bytes[j - 1], b' ' | b'\t') {
        j -= 1; // trailing whitespace gets encoded
    }
    j - start
}

/// Branch-free, so the compiler can check 16 bytes at once: space to `~`, but `=`.
fn all_plain(chunk: &[u8]) -> bool {
    chunk.iter().fold(true, |ok, &b| {
        ok & (b.wrapping_sub(b' ') < 95) & (b != b'=')
    })
}

/// May `bytes[i]` be written as is at `column`? Printable ASCII but `=`; a space or tab
/// unless it would end a line (trailing whitespace is stripped in transit); a `.`
/// unless it starts a line.
fn is_literal(bytes: &[u8], i: usize, column: usize) -> bool {
    match bytes[i] {
        b'.' => column > 0,
        b' ' | b'\t' => !matches!(bytes.get(i + 1), None | Some(b'\r' | b'\n')),
        byte => RUN[usize::from(byte)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(encoded: &[u8]) -> String {
        let text = std::str::from_utf8(encoded).expect("ascii");
        let joined = text.replace("=\r\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf-8")
    }

    fn check(input: &str) {
        let encoded = encode(input);
        for line in encoded.split(|b| *b == b'\n') {
            assert!(line.len() <= LINE + 2, "line too long: {line:?}");
            assert!(line.iter().all(|b| b.is_ascii() && *b != 0));
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(
                !line.ends_with(b" ") && !line.ends_with(b"\t"),
                "trailing space"
            );
            assert_ne!(line, b".", "lone dot");
        }
        assert_eq!(decode(&encoded), crate::render::normalize_crlf(input));
    }

    #[test]
    fn round_trips_text_with_every_awkward_case() {
        check("plain ascii");
        check("a = b, €12.50 · Zoë 李\nnext line\r\n.\n.\r\nend with space \nand tab\t\n");
        check(&"x".repeat(500));
        check(&"€".repeat(100));
        check(&format!("{}=\n{} \n", "y".repeat(74), "z".repeat(75)));
        check(". leading dot\n..two\n");
        check("a  \n  \n \t\r\nb \t");
        check(&format!("{}  \n", "w".repeat(73)));
        check("");
    }

    #[test]
    fn leading_dots_and_equals_are_encoded() {
        assert_eq!(encode(".\na=b"), b"=2E\r\na=3Db");
    }
}
