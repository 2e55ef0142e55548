//! Lists of wordings looked for in report texts. Each list builds its searchers once, on
//! first use: the same lists are searched in every report, some of them over the whole
//! text, and building a searcher costs more than running it on a short diagnostic.

use std::sync::OnceLock;

use memchr::memmem::Finder;

/// Wordings, in lower case, searched for in lower-case text.
pub(crate) struct Phrases {
    words: &'static [&'static str],
    finders: OnceLock<Vec<Finder<'static>>>,
}

impl Phrases {
    pub const fn new(words: &'static [&'static str]) -> Phrases {
        Phrases {
            words,
            finders: OnceLock::new(),
        }
    }

    fn finders(&self) -> &[Finder<'static>] {
        self.finders
            .get_or_init(|| self.words.iter().map(Finder::new).collect())
    }

    /// Whether `text` contains one of the wordings.
    pub fn any_in(&self, text: &str) -> bool {
        self.finders()
            .iter()
            .any(|f| f.find(text.as_bytes()).is_some())
    }

    /// Where the first of the wordings found in `text` starts (the smallest offset).
    pub fn first_in(&self, text: &str) -> Option<usize> {
        self.finders()
            .iter()
            .filter_map(|f| f.find(text.as_bytes()))
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
}
