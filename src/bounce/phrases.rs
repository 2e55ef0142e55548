//! Lists of wordings looked for in report texts. Each list builds its searchers once, on
//! first use: the same lists are searched in every report, some of them over the whole
//! text, and building a searcher costs more than running it on a short diagnostic.

use std::sync::OnceLock;

use memchr::memmem::Finder;

/// Wordings, in lower case, searched for in lower-case text. A `*` in a wording stands
/// for one word: one or more characters other than a space (Sisimai's `[^ ]+`).
pub(crate) struct Phrases {
    words: &'static [&'static str],
    wordings: OnceLock<Vec<Wording>>,
}

/// One wording, split at its `*`s: a searcher for the text before the first one, and
/// the texts that must follow each word in turn.
struct Wording {
    head: Finder<'static>,
    tail: Vec<&'static [u8]>,
}

impl Wording {
    fn new(word: &'static str) -> Wording {
        let mut pieces = word.split('*');
        let head = pieces.next().unwrap_or_default();
        Wording {
            head: Finder::new(head),
            tail: pieces.map(str::as_bytes).collect(),
        }
    }

    /// Where the first occurrence of the wording in `text` starts.
    fn find(&self, text: &[u8]) -> Option<usize> {
        if self.tail.is_empty() {
            return self.head.find(text);
        }
        let head_len = self.head.needle().len();
        self.head
            .find_iter(text)
            .find(|&at| follows(text, at + head_len, &self.tail))
    }
}

/// Whether `text[from..]` starts with a word followed by `pieces[0]`, then a word
/// followed by `pieces[1]`, and so on.
fn follows(text: &[u8], from: usize, pieces: &[&[u8]]) -> bool {
    let Some((piece, rest)) = pieces.split_first() else {
        return true;
    };
    let word_len = text[from..].iter().take_while(|&&b| b != b' ').count();
    (from + 1..=from + word_len)
        .any(|end| text[end..].starts_with(piece) && follows(text, end + piece.len(), rest))
}

impl Phrases {
    pub const fn new(words: &'static [&'static str]) -> Phrases {
        Phrases {
            words,
            wordings: OnceLock::new(),
        }
    }

    fn wordings(&self) -> &[Wording] {
        self.wordings
            .get_or_init(|| self.words.iter().copied().map(Wording::new).collect())
    }

    /// Whether `text` contains one of the wordings.
    pub fn any_in(&self, text: &str) -> bool {
        self.wordings()
            .iter()
            .any(|w| w.find(text.as_bytes()).is_some())
    }

    /// Where the first of the wordings found in `text` starts (the smallest offset).
    pub fn first_in(&self, text: &str) -> Option<usize> {
        self.wordings()
            .iter()
            .filter_map(|w| w.find(text.as_bytes()))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static WORDS: Phrases = Phrases::new(&["user unknown", "no such user"]);

    #[test]
    fn finds_any_and_the_first_wording() {
        assert!(WORDS.any_in("550 5.1.1 <a@b.c>: user unknown"));
        assert!(!WORDS.any_in("mailbox full"));
        assert_eq!(WORDS.first_in("x no such user; user unknown"), Some(2));
        assert_eq!(WORDS.first_in(""), None);
    }

    static WITH_WORDS: Phrases = Phrases::new(&["mailbox * does not exist", "<*@*> not found"]);

    #[test]
    fn a_star_stands_for_one_word() {
        assert!(WITH_WORDS.any_in("550 mailbox anna@b.c does not exist"));
        assert!(!WITH_WORDS.any_in("550 mailbox does not exist"));
        assert!(!WITH_WORDS.any_in("550 mailbox of anna does not exist"));
        assert_eq!(WITH_WORDS.first_in("x <a@b.c> not found"), Some(2));
        assert!(!WITH_WORDS.any_in("<postmaster> not found"));
        assert!(!WITH_WORDS.any_in("<a@b c> not found"));
    }
}
